from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("streams", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="consumergroup",
            name="offsets_partition",
            field=models.IntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="consumergroup",
            name="snapshot",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
