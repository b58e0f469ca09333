from tests.monitoring.notify.real_alertmanager import alertmanager  # noqa: F401 (a fixture)
