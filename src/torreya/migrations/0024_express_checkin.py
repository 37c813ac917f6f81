"""The express check-in on PostgreSQL (issue 13): the check-ins a worker has waiting, all
written by one statement, `SELECT * FROM torreya_express_checkins(…)`, in one transaction
(torreya/checkins/express.py; on SQLite the same writes run in one hop of aiosqlite's
thread, with no function in the database).

For each check-in, in the order given (the caller sorts them by resident, so two batches
lock residents in the same order), it does what `checkins.service.credit_check_in` does
for a resident's own scan, with the same statements:
- the resident's row, locked, only while the login is valid: active, a resident of the
  event's town, the token's generation, its login not ended;
- the caps of the town's check-in rule against the resident's period totals (read under
  that lock, which every credit takes before it touches totals, so they cannot move);
- the check-in claimed by its unique (event, user); then the balance, the period totals
  and the ledger entry, sealed. Its outbox messages come from the triggers of 0013.
A check-in that is not simply to be done (no such login, over a cap, already checked in)
is skipped, having written nothing, and has no row in the result: the caller then takes
the ordinary path for it, which names the reason and logs the refusal. Keep in sync with
credit_check_in and post_entry; tests compare the two paths.

The seal is HMAC-SHA256 over the entry's canonical text (trust/encoding.py), computed
from the two keyed blocks the caller passes (`hmac_pads`) with the database's SHA-256,
since only this statement knows `balance_after`.

Also, on both databases: earning_totals' index on user_id goes. The unique
(user_id, kind, period) index serves the same lookups, and every credit paid for both
(eight rows each).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES = [
    "DROP INDEX idx_totals_user",
    """
CREATE FUNCTION torreya_express_checkins(
    p_event_ids integer[], p_user_ids integer[], p_generations integer[], p_sids text[],
    p_town_ids integer[], p_points integer[], p_methods text[], p_ats timestamptz[],
    p_memos text[], p_kinds text[], p_periods text[], p_days text[], p_months text[],
    p_years text[], p_seal_heads text[], p_seal_tails text[], p_inner bytea, p_outer bytea)
RETURNS TABLE (item integer, new_checkin_id bigint, new_balance integer) AS $$
DECLARE
    v_town integer := NULL;
    v_cap_day integer;
    v_cap_month integer;
    v_cap_year integer;
    v_village integer;
    v_valid boolean;
    v_checkin bigint;
    v_balance integer;
    v_keys integer := array_length(p_kinds, 1);
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_user_ids, 1), 0) LOOP
        -- By its key alone (a generic plan could pick another index), then checked.
        SELECT u.village_id, u.is_active AND u.role = 'resident'
               AND u.town_id = p_town_ids[i] AND u.session_generation = p_generations[i]
               AND NOT (p_sids[i] IS NOT NULL
                        AND coalesce(u.ended_sessions ? p_sids[i], false))
          INTO v_village, v_valid
          FROM users u WHERE u.id = p_user_ids[i] FOR UPDATE;
        CONTINUE WHEN NOT FOUND OR NOT v_valid;

        IF v_town IS DISTINCT FROM p_town_ids[i] THEN
            v_town := p_town_ids[i];
            v_cap_day := NULL;
            v_cap_month := NULL;
            v_cap_year := NULL;
            SELECT r.cap_day, r.cap_month, r.cap_year
              INTO v_cap_day, v_cap_month, v_cap_year
              FROM earning_rules r WHERE r.town_id = v_town AND r.kind = 'checkin';
        END IF;
        IF coalesce(v_cap_day, v_cap_month, v_cap_year) IS NOT NULL THEN
            -- Over a cap after this credit, as post_entry finds it: with no total yet, the
            -- points alone; else the total plus the points.
            CONTINUE WHEN p_points[i] > least(v_cap_day, v_cap_month, v_cap_year);
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM earning_totals t
                 WHERE t.user_id = p_user_ids[i] AND t.kind = 'checkin'
                   AND ((t.period = p_days[i] AND t.total + p_points[i] > v_cap_day)
                        OR (t.period = p_months[i] AND t.total + p_points[i] > v_cap_month)
                        OR (t.period = p_years[i] AND t.total + p_points[i] > v_cap_year)));
        END IF;

        INSERT INTO checkins (event_id, user_id, method, staff_id, points, created_at)
        VALUES (p_event_ids[i], p_user_ids[i], p_methods[i], NULL, p_points[i], p_ats[i])
        ON CONFLICT (event_id, user_id) DO NOTHING
        RETURNING id INTO v_checkin;
        CONTINUE WHEN v_checkin IS NULL;

        UPDATE users u SET balance = u.balance + p_points[i],
                           lifetime_points = u.lifetime_points + p_points[i]
         WHERE u.id = p_user_ids[i]
        RETURNING u.balance INTO v_balance;

        INSERT INTO earning_totals AS t (user_id, town_id, village_id, kind, period, total)
        SELECT p_user_ids[i], p_town_ids[i], v_village, p_kinds[k],
               p_periods[(i - 1) * v_keys + k], p_points[i]
          FROM generate_series(1, v_keys) AS k
        ON CONFLICT (user_id, kind, period) DO UPDATE SET total = t.total + excluded.total;

        INSERT INTO ledger_entries (user_id, town_id, delta, balance_after, kind, memo,
                                    source_type, source_id, idem_key, actor_id, proxy,
                                    counts_as_earned, created_at, seal)
        VALUES (p_user_ids[i], p_town_ids[i], p_points[i], v_balance, 'checkin', p_memos[i],
                'event', p_event_ids[i],
                'checkin:' || p_event_ids[i] || ':' || p_user_ids[i], p_user_ids[i],
                false, true, p_ats[i],
                encode(sha256(p_outer || sha256(p_inner || convert_to(
                    p_seal_heads[i] || v_balance::text || p_seal_tails[i], 'UTF8'))),
                    'hex'));

        item := i;
        new_checkin_id := v_checkin;
        new_balance := v_balance;
        RETURN NEXT;
    END LOOP;
END
$$ LANGUAGE plpgsql
-- Plans made once per connection and kept: with custom plans (the default for the first
-- runs, and whenever they look cheaper) every statement was planned again on every row.
SET plan_cache_mode = force_generic_plan
""",
]


SQLITE = ["DROP INDEX idx_totals_user"]


async def add_function(apps, schema_editor) -> None:
    client = schema_editor.client
    for sql in POSTGRES if client.capabilities.dialect == "postgres" else SQLITE:
        await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [('models', '0023_offline_scans')]

    initial = False

    operations = [ops.RunPython(add_function)]
