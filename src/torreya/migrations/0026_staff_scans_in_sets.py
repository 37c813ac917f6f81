"""The express batches write a staff member's scans too (issue 15): an offline sync's card
scans were applied one by one, each in a savepoint with about a dozen statements, and cost
about three check-ins each once the check-in was written in sets (docs/benchmarks.md). Now
the sync writes the scans that simply succeed through `torreya_express_checkins` as well.

Two more arrays, one value per scan, NULL for a resident's own scan:
- `p_staff_ids`: who scanned; the check-in's staff_id, the entry's actor, and the entry is
  marked as a proxy's, as the ordinary path marks it;
- `p_serials`: the serial of the card scanned, checked under the resident's lock (a card
  reissued meanwhile is not credited). A staff member's scan has no login of the resident's
  to check (`p_generations` NULL).

The function also returns each scan's entry id, for the audit record the sync writes beside
it. A resident is still written once per batch.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES = [
    "DROP FUNCTION torreya_express_checkins(integer[], integer[], integer[], text[], integer[],"
    " integer[], text[], timestamptz[], text[], text[], text[], text[], text[], text[], text[],"
    " text[], bytea, bytea)",
    """
CREATE FUNCTION torreya_express_checkins(
    p_event_ids integer[], p_user_ids integer[], p_generations integer[], p_sids text[],
    p_town_ids integer[], p_points integer[], p_methods text[], p_ats timestamptz[],
    p_memos text[], p_kinds text[], p_periods text[], p_days text[], p_months text[],
    p_years text[], p_seal_heads text[], p_seal_tails text[], p_inner bytea, p_outer bytea,
    p_staff_ids integer[], p_serials integer[])
RETURNS TABLE (item integer, new_checkin_id bigint, new_balance integer, new_entry_id bigint)
AS $$
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
        -- A resident once per batch (0025).
        CONTINUE WHEN p_user_ids[i] = ANY (v_taken);
        -- By its key alone (a generic plan could pick another index), then checked.
        -- A resident's own scan: their login; a staff member's: the card's serial.
        SELECT u.village_id, u.is_active AND u.role = 'resident'
               AND u.town_id = p_town_ids[i]
               AND (p_generations[i] IS NULL
                    OR (u.session_generation = p_generations[i]
                        AND NOT (p_sids[i] IS NOT NULL
                                 AND coalesce(u.ended_sessions ? p_sids[i], false))))
               AND (p_serials[i] IS NULL OR u.card_serial = p_serials[i])
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
        SELECT p_event_ids[j.item], p_user_ids[j.item], p_methods[j.item], p_staff_ids[j.item],
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
               coalesce(p_staff_ids[p.item], p_user_ids[p.item]),
               p_staff_ids[p.item] IS NOT NULL, true, p_ats[p.item],
               encode(sha256(p_outer || sha256(p_inner || convert_to(
                   p_seal_heads[p.item] || p.balance::text || p_seal_tails[p.item],
                   'UTF8'))), 'hex')
          FROM paid p ORDER BY p.item
        RETURNING id, user_id
    )
    SELECT p.item, p.id, p.balance, e.id
      FROM paid p JOIN entries e ON e.user_id = p_user_ids[p.item];
END
$$ LANGUAGE plpgsql
-- Plans made once per connection and kept: with custom plans (the default for the first
-- runs, and whenever they look cheaper) every statement was planned again on every call.
SET plan_cache_mode = force_generic_plan
""",
]


async def write_staff_scans(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        for sql in POSTGRES:
            await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [('models', '0025_express_in_sets')]

    initial = False

    operations = [ops.RunPython(write_staff_scans)]
