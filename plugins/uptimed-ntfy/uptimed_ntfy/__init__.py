"""ntfy (https://ntfy.sh) as an uptimed channel."""

from uptimed_ntfy.channel import NtfyChannel, NtfyConfig

__all__ = ["NtfyChannel", "NtfyConfig"]
