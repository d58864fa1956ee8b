"""Namespace grants (what a group may do in a namespace), and the KV store's place in the admin."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('orchestrator', '0006_execution_search_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='KVStoreEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'verbose_name': 'KV store entry',
                'verbose_name_plural': 'KV store',
                'managed': False,
                'default_permissions': ('view', 'add', 'change', 'delete'),
            },
        ),
        migrations.CreateModel(
            name='NamespaceGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('namespace', models.CharField(help_text='Covers this namespace and every namespace under it.', max_length=150, validators=[django.core.validators.RegexValidator('^[a-z0-9][a-z0-9._-]*$', "a namespace: lowercase letters, digits, '.', '_' and '-', starting with a lowercase letter or a digit")])),
                ('read', models.BooleanField(default=True)),
                ('write', models.BooleanField(default=False)),
                ('execute', models.BooleanField(default=False)),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='namespace_grants', to='auth.group')),
            ],
            options={
                'ordering': ['group__name', 'namespace'],
                'constraints': [models.UniqueConstraint(fields=('group', 'namespace'), name='namespace_grant_unique')],
            },
        ),
    ]
