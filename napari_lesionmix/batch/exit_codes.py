"""Exit codes of ``lesionmix`` (the one place they are defined)."""

EXIT_OK = 0  #: every planned case written (verify: no problem found)
EXIT_FAILED = 1  #: some cases failed (verify: problems found; stats: bad cases)
EXIT_INPUT = 2  #: bad input or options; nothing was written
EXIT_INTERRUPTED = 130  #: stopped by Ctrl-C (or the plugin's Cancel)
EXIT_TERMINATED = 143  #: stopped by SIGTERM (SLURM, Kubernetes); 128 + 15, as a shell reports it

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]
