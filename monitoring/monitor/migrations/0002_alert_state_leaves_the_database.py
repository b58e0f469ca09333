"""Alert state moved to the monitor's own SQLite file (monitoring/monitor/state.py): the monitor
must keep recording it while the database it watches is down."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("monitor", "0001_initial")]

    operations = [
        migrations.DeleteModel(name="AlertTransition"),
        migrations.DeleteModel(name="AlertInstance"),
    ]
