"""ecgd: an always-on bedside ECG monitor daemon for the Raspberry Pi."""

__version__ = "0.1.0"
