"""Socket states are counted from the kernel's tables, as psutil would name them."""

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


def test_agrees_with_psutil_on_this_machine():
    ours = connection_states(__import__("pathlib").Path("/proc"))
    theirs: dict[str, int] = {}
    for conn in psutil.net_connections(kind="inet"):
        state = conn.status.lower() if conn.status != psutil.CONN_NONE else "none"
        theirs[state] = theirs.get(state, 0) + 1
    # Sockets come and go between the two reads; the set of states and rough counts agree.
    assert set(ours) <= set(theirs) | {"time_wait", "established", "close_wait", "syn_sent"}
    assert abs(sum(ours.values()) - sum(theirs.values())) <= max(20, sum(theirs.values()) // 5)


def test_a_scrape_serves_the_last_slow_reading_without_waiting():
    collector = SystemCollector()
    first = collector.read()
    assert first["processes"]["web"]["count"] >= 1  # this process, read inline the first time
    collector._slow.interval = 0  # stale at once: the next reads refresh in the background
    for _ in range(3):
        assert collector.read()["network_connections"] is not None
