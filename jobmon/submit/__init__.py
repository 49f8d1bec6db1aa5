"""``jobmon submit``: read an HTCondor submit file, wrap its executable, submit it."""

from jobmon.submit.parse import ParsedSubmit, parse_submit_file, parse_submit_text
from jobmon.submit.rewrite import WrapOptions, rewrite

__all__ = ["ParsedSubmit", "WrapOptions", "parse_submit_file", "parse_submit_text", "rewrite"]
