"""Socket states are counted from the kernel's tables, as psutil would name them."""

import contextlib
import pathlib
import socket

import psutil

from monitoring.collectors.system import SystemCollector, connection_states

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


PSUTIL_STATES = {getattr(psutil, name).lower() for name in dir(psutil) if name.startswith("CONN_")}


def test_counts_sockets_held_open_on_this_machine_as_psutil_names_them():
    # Other sockets come and go between two reads of a live machine (fin_wait, time_wait...):
    # only sockets this test holds open are certain, so they are what is compared.
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        for _ in range(10):
            stack.enter_context(socket.create_connection(listener.getsockname()))
            stack.enter_context(listener.accept()[0])
        udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        ours = connection_states(pathlib.Path("/proc"))
        theirs = [c.status.lower() for c in psutil.net_connections(kind="inet")]
    assert set(ours) <= PSUTIL_STATES and set(theirs) <= PSUTIL_STATES
    assert ours["listen"] >= 1 and ours["established"] >= 20 and ours["none"] >= 1
    assert theirs.count("listen") >= 1 and theirs.count("established") >= 20


def test_a_scrape_serves_the_last_slow_reading_without_waiting():
    collector = SystemCollector()
    first = collector.read()
    assert first["processes"]["web"]["count"] >= 1  # this process, read inline the first time
    collector._slow.interval = 0  # stale at once: the next reads refresh in the background
    for _ in range(3):
        assert collector.read()["network_connections"] is not None
