"""SSH servers as an uptimed monitor kind."""

from uptimed_ssh.kind import SshKind, SshOptions

__all__ = ["SshKind", "SshOptions"]
