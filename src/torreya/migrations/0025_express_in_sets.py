"""The express check-in on PostgreSQL writes a batch in sets (issue 13): the function of 0024
judged and wrote each check-in with its own statements, about ten of them per check-in,
each with its start-up cost; a check-in cost about 0.5 ms of the database's CPU. Now:

- the loop only judges: each scan's resident locked (in the order given, residents sorted,
  as before) and checked as before (login, caps);
- then one statement writes them all: the claims (unique (event, user)), the balances, the
  period totals and the ledger entries, sealed as before.

A resident is written once per batch: a second scan of theirs in the same batch (another
event) is skipped and takes the ordinary path once the batch has committed, where its caps
count the first. A scan skipped writes nothing, as before; tests compare the two paths.

The outbox triggers of 0013 on checkins and ledger_entries become statement triggers on
PostgreSQL: one INSERT INTO outbox for all the rows a statement made, in their id order,
with the same payloads (a test compares every message with PAYLOADS). Per row they cost a
third of the express check-in's time in the database. SQLite keeps its row triggers (it
has no others).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_PG_TIME = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""

POSTGRES = [
    "DROP TRIGGER ledger_entries_outbox ON ledger_entries",
    "DROP TRIGGER checkins_outbox ON checkins",
    "CREATE OR REPLACE FUNCTION torreya_ledger_outbox() RETURNS trigger AS $$ BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at)"
    " SELECT n.town_id, 'ledger.entry_created', json_build_object("
    "'id', n.id, 'user_id', n.user_id, 'village_id', u.village_id,"
    " 'delta', n.delta, 'balance_after', n.balance_after, 'kind', n.kind,"
    " 'memo', n.memo, 'source_type', n.source_type, 'source_id', n.source_id,"
    f" 'proxy', n.proxy, 'created_at', {_PG_TIME.format('n.created_at')})::jsonb,"
    " n.created_at FROM new_entries n LEFT JOIN users u ON u.id = n.user_id ORDER BY n.id;"
    " RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER ledger_entries_outbox AFTER INSERT ON ledger_entries"
    " REFERENCING NEW TABLE AS new_entries"
    " FOR EACH STATEMENT EXECUTE FUNCTION torreya_ledger_outbox()",
    "CREATE OR REPLACE FUNCTION torreya_checkin_outbox() RETURNS trigger AS $$ BEGIN"
    " INSERT INTO outbox (town_id, event_type, payload, created_at)"
    " SELECT e.town_id, 'checkin.created', json_build_object("
    "'id', n.id, 'event_id', n.event_id, 'village_id', e.village_id,"
    " 'user_id', n.user_id, 'points', n.points, 'method', n.method,"
    f" 'staff_id', n.staff_id, 'created_at', {_PG_TIME.format('n.created_at')})::jsonb,"
    " n.created_at FROM new_checkins n LEFT JOIN events e ON e.id = n.event_id"
    " ORDER BY n.id; RETURN NULL; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER checkins_outbox AFTER INSERT ON checkins"
    " REFERENCING NEW TABLE AS new_checkins"
    " FOR EACH STATEMENT EXECUTE FUNCTION torreya_checkin_outbox()",
    """
CREATE OR REPLACE FUNCTION torreya_express_checkins(
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
    v_keys integer := array_length(p_kinds, 1);
    v_items integer[] := '{}';
    v_villages integer[] := '{}';
    v_taken integer[] := '{}';
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_user_ids, 1), 0) LOOP
        -- A resident once per batch (see above).
        CONTINUE WHEN p_user_ids[i] = ANY (v_taken);
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
        v_items := v_items || i;
        v_villages := v_villages || v_village;
        v_taken := v_taken || p_user_ids[i];
    END LOOP;

    -- The claims first (one already there: that scan is skipped), then for each claimed
    -- the balance, the eight period totals and the sealed entry. Its outbox messages come
    -- from the statement triggers above.
    RETURN QUERY
    WITH judged AS (
        SELECT j.item, j.village FROM unnest(v_items, v_villages) AS j(item, village)
    ), claimed AS (
        INSERT INTO checkins (event_id, user_id, method, staff_id, points, created_at)
        SELECT p_event_ids[j.item], p_user_ids[j.item], p_methods[j.item], NULL,
               p_points[j.item], p_ats[j.item]
          FROM judged j ORDER BY j.item
        ON CONFLICT (event_id, user_id) DO NOTHING
        RETURNING id, user_id
    ), credited AS (
        SELECT j.item, j.village, c.id, c.user_id
          FROM claimed c JOIN judged j ON p_user_ids[j.item] = c.user_id
    ), paid AS (
        UPDATE users u SET balance = u.balance + p_points[c.item],
                           lifetime_points = u.lifetime_points + p_points[c.item]
          FROM credited c WHERE u.id = c.user_id
        RETURNING c.item, c.id, u.balance
    ), totals AS (
        INSERT INTO earning_totals AS t (user_id, town_id, village_id, kind, period, total)
        SELECT c.user_id, p_town_ids[c.item], c.village, p_kinds[k],
               p_periods[(c.item - 1) * v_keys + k], p_points[c.item]
          FROM credited c CROSS JOIN generate_series(1, v_keys) AS k
        ON CONFLICT (user_id, kind, period) DO UPDATE SET total = t.total + excluded.total
    ), entries AS (
        INSERT INTO ledger_entries (user_id, town_id, delta, balance_after, kind, memo,
                                    source_type, source_id, idem_key, actor_id, proxy,
                                    counts_as_earned, created_at, seal)
        SELECT p_user_ids[p.item], p_town_ids[p.item], p_points[p.item], p.balance,
               'checkin', p_memos[p.item], 'event', p_event_ids[p.item],
               'checkin:' || p_event_ids[p.item] || ':' || p_user_ids[p.item],
               p_user_ids[p.item], false, true, p_ats[p.item],
               encode(sha256(p_outer || sha256(p_inner || convert_to(
                   p_seal_heads[p.item] || p.balance::text || p_seal_tails[p.item],
                   'UTF8'))), 'hex')
          FROM paid p ORDER BY p.item
    )
    SELECT p.item, p.id, p.balance FROM paid p;
END
$$ LANGUAGE plpgsql
-- Plans made once per connection and kept: with custom plans (the default for the first
-- runs, and whenever they look cheaper) every statement was planned again on every call.
SET plan_cache_mode = force_generic_plan
""",
]


async def write_in_sets(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        for sql in POSTGRES:
            await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [('models', '0024_express_checkin')]

    initial = False

    operations = [ops.RunPython(write_in_sets)]
