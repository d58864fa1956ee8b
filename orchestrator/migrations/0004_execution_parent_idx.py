from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orchestrator', '0003_execution_metadata'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='execution',
            index=models.Index(condition=models.Q(('parent_id__isnull', False)), fields=['parent_id'],
                               name='execution_parent_idx'),
        ),
    ]
