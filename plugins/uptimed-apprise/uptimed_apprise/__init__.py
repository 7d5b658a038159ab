"""Apprise (https://github.com/caronc/apprise) as an uptimed channel."""

from uptimed_apprise.channel import AppriseChannel, AppriseConfig

__all__ = ["AppriseChannel", "AppriseConfig"]
