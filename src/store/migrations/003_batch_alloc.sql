-- Group commit of NR allocations: one instance hands the NRs that requests asked for while its
-- previous allocation transaction was in flight to ONE call, so that the slot row locks, the
-- plpgsql call and the commit (the WAL flush) are paid once per batch instead of once per NR.
-- Correctness stays here, not in the caller's queue: the slot rows are locked FOR UPDATE (in
-- (allocation, slot) order, so two instances' batches never wait on each other in a cycle), and
-- the primary key of resources still refuses any id handed out twice.
-- Items are taken in array order, each exactly as a call of xn_add_resource would take it (an
-- Idempotency-Key used twice in a batch replays the first; a full slot refuses only the items
-- that no longer fit). ord is the item's 1-based position in the arrays.
CREATE FUNCTION xn_add_resources(p_tenants text[], p_networks text[], p_nodes text[], p_keys text[], p_now bigint, p_quarantine bigint)
RETURNS TABLE (ord int, status text, nr_id int, nr_count int, detail text) LANGUAGE plpgsql AS $$
DECLARE
  k int;
  n networks%ROWTYPE;
  v_tenant text;
  v_network text;
  v_node text;
  v_key text;
  v_farm text;
  v_prefix text;
  v_node_farm text;
  v_id int;
  v_hw int;
  v_count int;
  v_last int;
  v_touch text[] := '{}';
  i idempotency%ROWTYPE;
BEGIN
  PERFORM 1 FROM slots s
   WHERE (s.allocation, s.slot) IN (SELECT nw.allocation, nw.slot FROM networks nw WHERE nw.id = ANY (p_networks))
   ORDER BY s.allocation, s.slot FOR UPDATE;
  FOR k IN 1 .. coalesce(array_length(p_networks, 1), 0) LOOP
    v_tenant := p_tenants[k]; v_network := p_networks[k]; v_node := p_nodes[k]; v_key := p_keys[k];
    SELECT * INTO n FROM networks WHERE id = v_network AND tenant_id = v_tenant;
    IF NOT FOUND THEN RETURN QUERY SELECT k, 'no_network', NULL::int, NULL::int, NULL::text; CONTINUE; END IF;
    -- Locked above (a network created since is locked here; FOR UPDATE again is harmless).
    SELECT s.high_water, s.nr_count INTO v_hw, v_count FROM slots s WHERE s.allocation = n.allocation AND s.slot = n.slot FOR UPDATE;
    SELECT a.farm_id, a.prefix, nd.farm_id INTO v_farm, v_prefix, v_node_farm
      FROM allocations a LEFT JOIN nodes nd ON nd.id = v_node WHERE a.number = n.allocation;
    IF v_key IS NOT NULL THEN
      SELECT * INTO i FROM idempotency WHERE tenant_id = v_tenant AND key = v_key;
      IF FOUND THEN
        IF i.network_id <> v_network OR i.node_id <> v_node THEN
          RETURN QUERY SELECT k, 'idem_mismatch', i.nr_id, NULL::int, i.network_id || ' ' || i.node_id; CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM resources r WHERE r.allocation = i.allocation AND r.nr_id = i.nr_id AND r.network_id = i.network_id) THEN
          RETURN QUERY SELECT k, 'replay', i.nr_id, v_count, n.allocation || ' ' || v_prefix; CONTINUE;
        END IF;
        RETURN QUERY SELECT k, 'idem_gone', i.nr_id, NULL::int, NULL::text; CONTINUE;
      END IF;
    END IF;
    IF v_node_farm IS NULL THEN RETURN QUERY SELECT k, 'no_node', NULL::int, NULL::int, NULL::text; CONTINUE; END IF;
    IF v_farm <> v_node_farm THEN RETURN QUERY SELECT k, 'node_farm', NULL::int, NULL::int, v_farm; CONTINUE; END IF;
    SELECT r.nr_id INTO v_id FROM resources r WHERE r.network_id = v_network AND r.node_id = v_node LIMIT 1;
    IF FOUND THEN RETURN QUERY SELECT k, 'node_taken', v_id, NULL::int, NULL::text; CONTINUE; END IF;
    -- The lowest free id: an id whose quarantine is over (always below high_water), else high_water.
    v_last := CASE WHEN n.slot = 15 THEN 65279 ELSE (n.slot << 12) | 4095 END;
    SELECT q.nr_id INTO v_id FROM quarantine q
     WHERE q.allocation = n.allocation AND q.nr_id BETWEEN (n.slot << 12) AND v_last AND q.released_at + p_quarantine <= p_now
     ORDER BY q.nr_id LIMIT 1;
    IF v_id IS NOT NULL THEN
      DELETE FROM quarantine q WHERE q.allocation = n.allocation AND q.nr_id = v_id;
    ELSIF v_hw <= v_last THEN
      v_id := v_hw;
      v_hw := v_hw + 1;
    ELSE
      RETURN QUERY SELECT k, 'full', NULL::int, NULL::int,
        (SELECT count(*)::text FROM quarantine q WHERE q.allocation = n.allocation AND q.nr_id >> 12 = n.slot); CONTINUE;
    END IF;
    INSERT INTO resources (allocation, nr_id, slot, network_id, node_id, created_at)
      VALUES (n.allocation, v_id, n.slot, v_network, v_node, p_now);
    UPDATE slots s SET nr_count = v_count + 1, high_water = v_hw WHERE s.allocation = n.allocation AND s.slot = n.slot;
    IF v_key IS NOT NULL THEN
      INSERT INTO idempotency VALUES (v_tenant, v_key, v_network, v_node, n.allocation, v_id, p_now);
    END IF;
    v_touch := v_touch || xn_network_nodes(v_network);
    RETURN QUERY SELECT k, 'ok', v_id, v_count + 1, n.allocation || ' ' || v_prefix;
  END LOOP;
  -- Once for the batch, in node id order (xn_touch sorts): each view version moves once.
  PERFORM xn_touch(v_touch);
END $$;

-- One NR: a batch of one, so that there is a single copy of the allocator.
CREATE OR REPLACE FUNCTION xn_add_resource(p_tenant text, p_network text, p_node text, p_key text, p_now bigint, p_quarantine bigint)
RETURNS TABLE (status text, nr_id int, nr_count int, detail text) LANGUAGE sql AS $$
  SELECT r.status, r.nr_id, r.nr_count, r.detail
    FROM xn_add_resources(ARRAY[p_tenant], ARRAY[p_network], ARRAY[p_node], ARRAY[p_key], p_now, p_quarantine) r
$$;
