"""Admission without Redis (billing.admission): the per-minute request counts, UNLOGGED, and `billing_usage_admit`,
the PostgreSQL twin of the admission Lua script.

The function runs in one transaction (the caller's autocommit statement): the access epoch (the sequence of
core 0002), the key's request in this minute, then the quota counters locked in metric order (so concurrent
admissions never deadlock), created when missing, checked, and charged with their ledger rows, all or none.
It answers as the script does: {1, use after each charge...}, {-2, current epoch}, {-3, requests this minute},
{0, position of the refused charge (1-based), its use}. The rate is counted before the quota is checked.
"""

from django.db import migrations, models

ADMIT_FUNCTION = """
CREATE FUNCTION billing_usage_admit(
    expected_epoch text, rate_key text, rate_minute bigint, rate_limit bigint,
    workspace uuid, period timestamptz, metrics text[], amounts bigint[], limits bigint[]
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    epoch_now bigint;
    requests bigint;
    charge record;
    held bigint;
    answer bigint[] := ARRAY[1];
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO epoch_now FROM core_access_epoch;
    IF epoch_now::text <> expected_epoch THEN
        RETURN ARRAY[-2, epoch_now];
    END IF;

    IF rate_limit IS NOT NULL THEN
        INSERT INTO billing_requestcount AS counted (key_id, minute, count) VALUES (rate_key, rate_minute, 1)
            ON CONFLICT (key_id, minute) DO UPDATE SET count = counted.count + 1
            RETURNING counted.count INTO requests;
        IF requests = 1 THEN  -- the key's first request this minute: its earlier minutes are done with
            DELETE FROM billing_requestcount WHERE key_id = rate_key AND minute < rate_minute;
        END IF;
        IF requests > rate_limit THEN
            RETURN ARRAY[-3, requests];
        END IF;
    END IF;

    FOR charge IN
        SELECT c.metric, c.amount, c.quota, c.position
        FROM unnest(metrics, amounts, limits) WITH ORDINALITY AS c(metric, amount, quota, position)
        ORDER BY c.metric
    LOOP
        SELECT used INTO held FROM billing_quotacounter
            WHERE workspace_id = workspace AND metric = charge.metric AND period_start = period FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO billing_quotacounter (workspace_id, metric, period_start, used)
                VALUES (workspace, charge.metric, period, 0) ON CONFLICT DO NOTHING;
            SELECT used INTO held FROM billing_quotacounter
                WHERE workspace_id = workspace AND metric = charge.metric AND period_start = period FOR UPDATE;
        END IF;
        IF held + charge.amount > charge.quota THEN  -- (NULL, never true, when the quota is unlimited)
            RETURN ARRAY[0, charge.position, held];
        END IF;
    END LOOP;

    FOR i IN 1 .. coalesce(cardinality(metrics), 0) LOOP
        UPDATE billing_quotacounter SET used = used + amounts[i]
            WHERE workspace_id = workspace AND metric = metrics[i] AND period_start = period
            RETURNING used INTO held;
        answer := answer || held;
    END LOOP;
    INSERT INTO billing_usageentry (workspace_id, metric, period_start, amount, recorded_at)
        SELECT workspace, c.metric, period, c.amount, now() FROM unnest(metrics, amounts) AS c(metric, amount);
    RETURN answer;
END
$$
"""

ADMIT_FUNCTION_DROP = (
    "DROP FUNCTION billing_usage_admit(text, text, bigint, bigint, uuid, timestamptz, text[], bigint[], bigint[])"
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_quotanotice"),
        ("core", "0002_access_epoch"),
    ]

    operations = [
        migrations.CreateModel(
            name="RequestCount",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "key_id", "minute", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("key_id", models.CharField(max_length=64)),
                ("minute", models.BigIntegerField(help_text="Unix time // 60.")),
                ("count", models.PositiveIntegerField()),
            ],
        ),
        migrations.RunSQL(
            "ALTER TABLE billing_requestcount SET UNLOGGED", "ALTER TABLE billing_requestcount SET LOGGED"
        ),
        migrations.RunSQL(ADMIT_FUNCTION, ADMIT_FUNCTION_DROP),
    ]
