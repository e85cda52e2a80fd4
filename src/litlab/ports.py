"""A server's port on 127.0.0.1, checked before anything starts: a number in range that can be bound
now. litlab serve, dashboard and mlflow-ui ask it, so that a busy or a wrong port
is one line instead of the server's own error after it has begun."""

import socket

from litlab.errors import UserError
from litlab.values import is_int

HOST = "127.0.0.1"  # the loopback only: litlab's servers answer this machine, never the network


def free_port(value: object, setting: str, low: int = 1, high: int = 65535) -> int:
    """`value` as a port from `low` to `high` that nothing on 127.0.0.1 holds now. `setting` spells the
    setting with a value in its `{}`: "port={}" for a Hydra key, "--port {}" for a flag."""
    port = value if is_int(value) else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        port = int(value)
    if port is None or not low <= port <= high:
        floor = f" (ports below {low} are privileged)" if low > 1 else ""
        raise UserError(
            f"{setting.format(repr(value))} is not a port; give an integer from {low} to {high}{floor}, "
            f"e.g. {setting.format(8080)}"
        )
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: a closed one's port is free
        try:
            probe.bind((HOST, port))
        except OSError as e:
            other = port + 1 if port < high else port - 1
            raise UserError(
                f"{setting.format(port)} cannot be used on {HOST} ({e.strerror}: another server listens there?); "
                f"give another, e.g. {setting.format(other)}"
            ) from None
    return port
