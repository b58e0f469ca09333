"""Socket states are counted from the kernel's tables, as psutil would name them."""

import socket
from pathlib import Path

import psutil

from monitoring.collectors.system import _TCP_STATES, SystemCollector, connection_states

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1
 123: 0100007F:1F90 0100007F:C351 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3
12345: 0100007F:1F90 0100007F:C352 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3
"""
UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
  1: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9 2
"""


def test_states_from_fixture_tables(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    (tmp_path / "net" / "udp").write_text(UDP)  # no tcp6/udp6: IPv6 off
    assert connection_states(tmp_path) == {"listen": 1, "established": 1, "time_wait": 2, "none": 1}


def test_no_tables_means_unavailable_not_zero(tmp_path):
    assert connection_states(tmp_path) is None


def test_state_names_are_psutils():
    """Every kernel state maps to the name psutil gives it (lower case)."""
    psutil_names = {
        getattr(psutil, name).lower() for name in dir(psutil) if name.startswith("CONN_")
    }
    assert set(_TCP_STATES.values()) <= psutil_names


def test_sockets_of_this_test_are_counted_on_this_machine():
    """Live tables change between any two reads (other processes open and close sockets,
    connections pass through fin_wait and time_wait), so this checks lower bounds that only
    our own sockets could break: one listener and two ends of each connection we hold."""
    listener = socket.create_server(("127.0.0.1", 0))
    clients, servers = [], []
    try:
        for _ in range(3):
            clients.append(socket.create_connection(listener.getsockname()))
            servers.append(listener.accept()[0])
        states = connection_states(Path("/proc"))
        assert states["listen"] >= 1
        assert states["established"] >= 6
    finally:
        for sock in (*clients, *servers, listener):
            sock.close()


def test_a_scrape_serves_the_last_slow_reading_without_waiting():
    collector = SystemCollector()
    first = collector.read()
    assert first["processes"]["web"]["count"] >= 1  # this process, read inline the first time
    collector._slow.interval = 0  # stale at once: the next reads refresh in the background
    for _ in range(3):
        assert collector.read()["network_connections"] is not None
