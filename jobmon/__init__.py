"""htcondor-jobmon: look inside running HTCondor jobs."""

__version__ = "0.1.0"
