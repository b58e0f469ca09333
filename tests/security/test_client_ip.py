"""The client address: forwarded headers believed only from trusted proxies."""

import pytest

from security.client_ip import ClientIp, parse_networks

PROXIES = ClientIp(parse_networks(["10.9.0.0/16", "192.168.1.1"]))


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"REMOTE_ADDR": "203.0.113.5"}, "203.0.113.5"),
        # A client writing the header itself, straight at us: ignored.
        ({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "203.0.113.5"),
        ({"REMOTE_ADDR": "203.0.113.5", "HTTP_X_REAL_IP": "1.2.3.4"}, "203.0.113.5"),
        # Through our proxy: the hop it appended.
        ({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}, "198.51.100.7"),
        # The client's forged hops are left of the proxy's: the right-most untrusted one wins.
        (
            {"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.7"},
            "198.51.100.7",
        ),
        # Two proxies of ours in a row.
        (
            {
                "REMOTE_ADDR": "10.9.0.2",
                "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.7, 192.168.1.1",
            },
            "198.51.100.7",
        ),
        ({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_REAL_IP": "198.51.100.8"}, "198.51.100.8"),
        ({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "garbage"}, "10.9.0.2"),
        ({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "[2001:db8::1]:443"}, "2001:db8::1"),
        ({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.9:5555"}, "198.51.100.9"),
    ],
)
def test_the_client_address(meta, expected):
    assert PROXIES.resolve(meta) == expected


def test_nothing_trusted_means_the_peer():
    assert ClientIp(()).resolve({"REMOTE_ADDR": "10.9.0.2", "HTTP_X_FORWARDED_FOR": "1.1.1.1"}) == (
        "10.9.0.2"
    )


def test_a_bad_cidr_is_refused_by_name():
    with pytest.raises(ValueError, match="'10.0.0.0/99'"):
        parse_networks(["10.0.0.0/99"])
