-- Stage 2 failover (DESIGN.md section 8.2, issue 10): candidates, node keys, sealed ExitPoint keys.
--
-- Per allocation, `failover` chooses the mode: 'lease' (stage 1, exactly as before: one holder per
-- slot whose lease fences it) or 'vrrp' (stage 2: every slot has an ordered list of candidate
-- nodes that all build its gateway; keepalived on the segment decides who answers). In 'vrrp'
-- mode slots.node_id stays the first candidate, and the ExitPoint NRs' node_id with it, but a
-- change of the first candidate KEEPS the ExitPoint's public key (the candidates share the
-- private key, sealed to each of them), so remote NRs never change a peer.
--
-- Liveness of a candidate is its node's heartbeat. The sweep (xn_sweep below) in 'vrrp' mode:
--   - the first candidate lapsed: the next live candidate becomes first (keys kept);
--   - a lapsed candidate is replaced by a live exit-capable node of the farm that is not a
--     candidate yet (the fewest candidacies first); without one it stays (and builds on return);
--   - every candidate lapsed: a live exit-capable node becomes the only candidate (stage 1's last
--     resort, with the sealed keys: still no peer change);
--   - fewer candidates than the allocation's `candidates`: live non-candidates are added.
ALTER TABLE allocations
  ADD COLUMN failover text NOT NULL DEFAULT 'lease' CHECK (failover IN ('lease', 'vrrp')),
  ADD COLUMN candidates int NOT NULL DEFAULT 2 CHECK (candidates BETWEEN 1 AND 8);

-- The node's own X25519 public key (base64, 32 bytes): the ExitPoint keys are sealed to it.
ALTER TABLE nodes ADD COLUMN node_key text;

-- An NR's endpoint as the master of its network's slot learned it from its packets (NAT).
ALTER TABLE resources ADD COLUMN learned_endpoint text;

-- A planned handover in 'vrrp' mode (exitnode slot move): the node that is to answer. The current
-- master is told to step down once that node reports BACKUP (it is in the VRRP group, built).
-- vrrp_transitions: VRRP state changes reported by the slot's candidates (a counter for /metrics).
ALTER TABLE slots ADD COLUMN handover_to text REFERENCES nodes (id);
ALTER TABLE slots ADD COLUMN handover_at bigint;
ALTER TABLE slots ADD COLUMN vrrp_transitions bigint NOT NULL DEFAULT 0;

-- The candidates of a slot, rank 0 first (= slots.node_id). The VRRP columns are the node's last
-- report (its heartbeat): state, priority and since (the agent's clock); reported_at and
-- changed_at are the store's clock (the report, the last change of state). added_at gives a new
-- candidate one TTL to heartbeat before the sweep counts it lapsed. step_down: TNoDB asks this
-- master to give up mastership (a dual master, or a planned handover); cleared by a BACKUP report.
CREATE TABLE slot_candidates (
  allocation int NOT NULL,
  slot int NOT NULL,
  node_id text NOT NULL REFERENCES nodes (id),
  rank int NOT NULL CHECK (rank >= 0),
  vrrp_state text CHECK (vrrp_state IN ('MASTER', 'BACKUP', 'FAULT', 'STOPPED')),
  vrrp_priority int,
  vrrp_since bigint,
  reported_at bigint,
  changed_at bigint,
  step_down boolean NOT NULL DEFAULT false,
  added_at bigint NOT NULL,
  PRIMARY KEY (allocation, slot, node_id),
  FOREIGN KEY (allocation, slot) REFERENCES slots (allocation, slot)
);
CREATE INDEX slot_candidates_by_node ON slot_candidates (node_id);

-- ExitPoint private keys sealed to a node's node key (src/core/seal.ts): ciphertext only. They go
-- with their NR.
CREATE TABLE sealed_keys (
  allocation int NOT NULL,
  nr_id int NOT NULL,
  node_id text NOT NULL REFERENCES nodes (id),
  sealed text NOT NULL,
  PRIMARY KEY (allocation, nr_id, node_id),
  FOREIGN KEY (allocation, nr_id) REFERENCES resources (allocation, nr_id) ON DELETE CASCADE
);
CREATE INDEX sealed_keys_by_node ON sealed_keys (node_id);

-- The nodes whose views show a network: every node with an NR of it and, in 'vrrp' mode, every
-- candidate of its slot (they build its ExitPoint).
CREATE OR REPLACE FUNCTION xn_network_nodes(p_network text) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT x.node_id), '{}') FROM (
    SELECT r.node_id FROM resources r WHERE r.network_id = p_network
    UNION ALL
    SELECT c.node_id FROM networks n JOIN slot_candidates c ON c.allocation = n.allocation AND c.slot = n.slot
     WHERE n.id = p_network
  ) x
$$;

-- The nodes whose views show the networks of a slot (their NRs' nodes and the slot's candidates).
CREATE FUNCTION xn_slot_nodes(p_allocation int, p_slot int) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT x.node_id), '{}') FROM (
    SELECT r.node_id FROM resources r JOIN networks n ON n.id = r.network_id
     WHERE n.allocation = p_allocation AND n.slot = p_slot
    UNION ALL
    SELECT c.node_id FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot
  ) x
$$;

-- As 001, but the new network's view version moves for every node that shows it (in 'vrrp' mode
-- every candidate of the slot, not only the holder).
CREATE OR REPLACE FUNCTION xn_create_network(p_tenant text, p_id text, p_name text, p_allocation int, p_now bigint, p_quarantine bigint)
RETURNS TABLE (status text, allocation int, slot int, nr_id int, nr_count int) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_id int;
  v_count int;
BEGIN
  IF EXISTS (SELECT 1 FROM networks WHERE tenant_id = p_tenant AND name = p_name) THEN
    RETURN QUERY SELECT 'name_taken', NULL::int, NULL::int, NULL::int, NULL::int; RETURN;
  END IF;
  FOR s IN SELECT * FROM slots x
    WHERE (p_allocation IS NULL OR x.allocation = p_allocation) AND x.node_id IS NOT NULL AND x.lease_expires_at > p_now
    ORDER BY x.nr_count, x.allocation, x.slot
  LOOP
    SELECT * INTO s FROM slots x WHERE x.allocation = s.allocation AND x.slot = s.slot FOR UPDATE;
    CONTINUE WHEN s.node_id IS NULL;
    v_id := xn_take_id(s.allocation, s.slot, p_now, p_quarantine);
    CONTINUE WHEN v_id IS NULL;
    INSERT INTO networks VALUES (p_id, p_tenant, p_name, s.allocation, s.slot, v_id, p_now);
    INSERT INTO resources (allocation, nr_id, slot, network_id, node_id, created_at)
      VALUES (s.allocation, v_id, s.slot, p_id, s.node_id, p_now);
    UPDATE slots x SET nr_count = x.nr_count + 1 WHERE x.allocation = s.allocation AND x.slot = s.slot
      RETURNING x.nr_count INTO v_count;
    PERFORM xn_touch(xn_network_nodes(p_id));
    RETURN QUERY SELECT 'ok', s.allocation, s.slot, v_id, v_count; RETURN;
  END LOOP;
  IF EXISTS (SELECT 1 FROM slots x WHERE (p_allocation IS NULL OR x.allocation = p_allocation) AND x.node_id IS NOT NULL AND x.lease_expires_at > p_now) THEN
    RETURN QUERY SELECT 'full', NULL::int, NULL::int, NULL::int, NULL::int; RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM slots x WHERE (p_allocation IS NULL OR x.allocation = p_allocation) AND x.node_id IS NOT NULL) THEN
    RETURN QUERY SELECT 'lapsed', NULL::int, NULL::int, NULL::int, NULL::int; RETURN;
  END IF;
  RETURN QUERY SELECT 'no_slot', NULL::int, NULL::int, NULL::int, NULL::int;
END $$;

-- The candidate list of a slot becomes p_list (ordered, non-empty, checked by the caller). Rows of
-- candidates that stay keep their VRRP report; new ones start empty. When the first candidate
-- changes, the slot's holder (node_id) and the ExitPoint NRs follow with epoch + 1, their public
-- keys KEPT. Views move for every node that shows the slot before or after (only the candidates'
-- when the first stays). Returns the holder before and after and the epoch; no row when nothing
-- changed. The caller holds the slot row FOR UPDATE.
CREATE FUNCTION xn_cand_apply(p_allocation int, p_slot int, p_list text[], p_now bigint, p_ttl bigint)
RETURNS TABLE (previous text, node text, epoch int) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_old text[];
  v_touch text[];
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
  SELECT coalesce(array_agg(c.node_id ORDER BY c.rank), '{}') INTO v_old
    FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot;
  IF v_old = p_list AND s.node_id IS NOT DISTINCT FROM p_list[1] THEN RETURN; END IF;
  v_touch := v_old || p_list;
  DELETE FROM slot_candidates c
   WHERE c.allocation = p_allocation AND c.slot = p_slot AND NOT (c.node_id = ANY (p_list));
  UPDATE slot_candidates c SET rank = array_position(p_list, c.node_id) - 1
   WHERE c.allocation = p_allocation AND c.slot = p_slot;
  INSERT INTO slot_candidates (allocation, slot, node_id, rank, added_at)
    SELECT p_allocation, p_slot, u.x, (u.o - 1)::int, p_now FROM unnest(p_list) WITH ORDINALITY u(x, o)
     WHERE NOT EXISTS (SELECT 1 FROM slot_candidates c
                        WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.node_id = u.x);
  -- A handover to a node that is no candidate any more is void.
  IF s.handover_to IS NOT NULL AND NOT (s.handover_to = ANY (p_list)) THEN
    UPDATE slots x SET handover_to = NULL WHERE x.allocation = p_allocation AND x.slot = p_slot;
  END IF;
  IF s.node_id IS DISTINCT FROM p_list[1] THEN
    v_touch := v_touch || xn_slot_nodes(p_allocation, p_slot) || ARRAY[s.node_id];
    UPDATE resources r SET node_id = p_list[1]
      FROM networks n
     WHERE n.allocation = p_allocation AND n.slot = p_slot AND r.network_id = n.id AND r.nr_id = n.exit_id
       AND r.allocation = n.allocation;
    UPDATE slots x SET node_id = p_list[1], epoch = s.epoch + 1, lease_expires_at = p_now + p_ttl, renewed_at = p_now,
           moving_to = NULL, health = NULL, health_at = NULL
     WHERE x.allocation = p_allocation AND x.slot = p_slot;
    PERFORM xn_touch(v_touch);
    RETURN QUERY SELECT s.node_id, p_list[1], s.epoch + 1;
    RETURN;
  END IF;
  PERFORM xn_touch(v_touch);
  RETURN QUERY SELECT s.node_id, p_list[1], s.epoch;
END $$;

-- The default list for a slot whose holder is p_first: p_first, then the farm's other exit-capable
-- nodes, live ones first, the fewest candidacies first, up to the allocation's `candidates`.
CREATE FUNCTION xn_cand_default(p_allocation int, p_slot int, p_first text, p_now bigint, p_ttl bigint)
RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT ARRAY[p_first] || coalesce((
    SELECT array_agg(y.id ORDER BY y.ord) FROM (
      SELECT nd.id, row_number() OVER (
               ORDER BY (nd.last_heartbeat IS NOT NULL AND nd.last_heartbeat + p_ttl > p_now) DESC,
                        (SELECT count(*) FROM slot_candidates c WHERE c.node_id = nd.id
                            AND NOT (c.allocation = p_allocation AND c.slot = p_slot)),
                        nd.id) AS ord
        FROM nodes nd JOIN allocations a ON a.farm_id = nd.farm_id
       WHERE a.number = p_allocation AND nd.exit_capable AND nd.id <> p_first
    ) y WHERE y.ord < (SELECT a.candidates FROM allocations a WHERE a.number = p_allocation)
  ), '{}')
$$;

-- As 002 in 'lease' mode. In 'vrrp' mode a new holder becomes the first candidate: moved to the
-- front when it is a candidate already, else the list is made afresh (xn_cand_default); keys kept.
CREATE OR REPLACE FUNCTION xn_assign_slot(p_allocation int, p_slot int, p_node text, p_now bigint, p_ttl bigint)
RETURNS TABLE (epoch int, lease_expires_at bigint, previous text) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_nodes text[];
  v_list text[];
  v_epoch int;
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
  IF (SELECT a.failover FROM allocations a WHERE a.number = p_allocation) = 'vrrp' THEN
    SELECT coalesce(array_agg(c.node_id ORDER BY c.rank), '{}') INTO v_list
      FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot;
    IF s.node_id IS NOT DISTINCT FROM p_node AND v_list[1] IS NOT DISTINCT FROM p_node THEN
      UPDATE slots x SET lease_expires_at = p_now + p_ttl, renewed_at = p_now WHERE x.allocation = p_allocation AND x.slot = p_slot;
      RETURN QUERY SELECT s.epoch, p_now + p_ttl, s.node_id; RETURN;
    END IF;
    IF p_node = ANY (v_list) THEN
      v_list := ARRAY[p_node] || array_remove(v_list, p_node);
    ELSE
      v_list := xn_cand_default(p_allocation, p_slot, p_node, p_now, p_ttl);
    END IF;
    SELECT r.epoch INTO v_epoch FROM xn_cand_apply(p_allocation, p_slot, v_list, p_now, p_ttl) r;
    UPDATE slots x SET lease_expires_at = p_now + p_ttl, renewed_at = p_now WHERE x.allocation = p_allocation AND x.slot = p_slot;
    RETURN QUERY SELECT coalesce(v_epoch, s.epoch), p_now + p_ttl, s.node_id; RETURN;
  END IF;
  IF s.node_id IS NOT DISTINCT FROM p_node THEN
    UPDATE slots x SET lease_expires_at = p_now + p_ttl, renewed_at = p_now, moving_to = NULL WHERE x.allocation = p_allocation AND x.slot = p_slot;
    RETURN QUERY SELECT s.epoch, p_now + p_ttl, s.node_id; RETURN;
  END IF;
  -- Everyone who sees a TN exiting here sees its ExitPoint move.
  SELECT coalesce(array_agg(DISTINCT r.node_id), '{}') INTO v_nodes
    FROM resources r JOIN networks n ON n.id = r.network_id
   WHERE n.allocation = p_allocation AND n.slot = p_slot;
  UPDATE resources r SET node_id = p_node, public_key = NULL
    FROM networks n
   WHERE n.allocation = p_allocation AND n.slot = p_slot AND r.network_id = n.id AND r.nr_id = n.exit_id
     AND r.allocation = n.allocation;
  UPDATE slots x SET node_id = p_node, epoch = s.epoch + 1, lease_expires_at = p_now + p_ttl, renewed_at = p_now,
         moving_to = NULL, health = NULL, health_at = NULL
   WHERE x.allocation = p_allocation AND x.slot = p_slot;
  PERFORM xn_touch(v_nodes || ARRAY[s.node_id, p_node]);
  RETURN QUERY SELECT s.epoch + 1, p_now + p_ttl, s.node_id;
END $$;

-- Whether a node counts as live for the sweep: heartbeat (or, never heard, since p_since) younger
-- than the TTL plus the fencing margin.
CREATE FUNCTION xn_cand_lapsed(p_heartbeat bigint, p_since bigint, p_now bigint, p_ttl bigint, p_margin bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(p_heartbeat, p_since) + p_ttl + p_margin <= p_now
$$;

-- The 'vrrp' part of the sweep (see the top of this file). Returns every slot whose candidates
-- changed, with its holder before and after.
CREATE FUNCTION xn_vrrp_sweep(p_now bigint, p_ttl bigint, p_margin bigint)
RETURNS TABLE (allocation int, slot int, previous text, node text, epoch int) LANGUAGE plpgsql AS $$
DECLARE
  s record;
  v_list text[];
  v_live text[];
  v_dead text[];
  v_pool text[];
  v_new text[];
  v_d text;
  r record;
BEGIN
  FOR s IN
    SELECT x.allocation, x.slot, x.node_id, a.farm_id, a.candidates FROM slots x JOIN allocations a ON a.number = x.allocation
     WHERE a.failover = 'vrrp' AND x.node_id IS NOT NULL AND (
       -- the holder is not the first candidate (no candidates yet, or a list made by hand)
       NOT EXISTS (SELECT 1 FROM slot_candidates c WHERE c.allocation = x.allocation AND c.slot = x.slot
                      AND c.node_id = x.node_id AND c.rank = 0)
       -- the first candidate lapsed and another one is live
       OR EXISTS (SELECT 1 FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
                   WHERE c.allocation = x.allocation AND c.slot = x.slot AND c.rank = 0
                     AND xn_cand_lapsed(nd.last_heartbeat, c.added_at, p_now, p_ttl, p_margin))
       -- a candidate lapsed, or the list is short, and a live node could take its place
       OR ((EXISTS (SELECT 1 FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
                     WHERE c.allocation = x.allocation AND c.slot = x.slot
                       AND xn_cand_lapsed(nd.last_heartbeat, c.added_at, p_now, p_ttl, p_margin))
            OR (SELECT count(*) FROM slot_candidates c WHERE c.allocation = x.allocation AND c.slot = x.slot) < a.candidates)
           AND EXISTS (SELECT 1 FROM nodes nd WHERE nd.farm_id = a.farm_id AND nd.exit_capable
                          AND nd.last_heartbeat IS NOT NULL AND nd.last_heartbeat + p_ttl > p_now
                          AND NOT EXISTS (SELECT 1 FROM slot_candidates c WHERE c.allocation = x.allocation
                                             AND c.slot = x.slot AND c.node_id = nd.id))))
     ORDER BY x.allocation, x.slot FOR UPDATE OF x SKIP LOCKED
  LOOP
    SELECT coalesce(array_agg(c.node_id ORDER BY c.rank), '{}'),
           coalesce(array_agg(c.node_id ORDER BY c.rank) FILTER (
             WHERE NOT xn_cand_lapsed(nd.last_heartbeat, c.added_at, p_now, p_ttl, p_margin)), '{}'),
           coalesce(array_agg(c.node_id ORDER BY c.rank) FILTER (
             WHERE xn_cand_lapsed(nd.last_heartbeat, c.added_at, p_now, p_ttl, p_margin)), '{}')
      INTO v_list, v_live, v_dead
      FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
     WHERE c.allocation = s.allocation AND c.slot = s.slot;
    IF cardinality(v_list) = 0 THEN
      -- No list yet (the allocation turned to 'vrrp', or an old holder): the holder first.
      v_list := xn_cand_default(s.allocation, s.slot, s.node_id, p_now, p_ttl);
      SELECT * INTO r FROM xn_cand_apply(s.allocation, s.slot, v_list, p_now, p_ttl);
      IF FOUND THEN RETURN QUERY SELECT s.allocation, s.slot, r.previous, r.node, r.epoch; END IF;
      CONTINUE;
    END IF;
    SELECT coalesce(array_agg(nd.id ORDER BY (SELECT count(*) FROM slot_candidates c WHERE c.node_id = nd.id), nd.id), '{}')
      INTO v_pool
      FROM nodes nd
     WHERE nd.farm_id = s.farm_id AND nd.exit_capable AND nd.last_heartbeat IS NOT NULL AND nd.last_heartbeat + p_ttl > p_now
       AND NOT (nd.id = ANY (v_list));
    IF cardinality(v_live) = 0 THEN
      -- Every candidate is gone: the last resort, a live node alone (then topped up below).
      CONTINUE WHEN cardinality(v_pool) = 0;
      v_new := v_pool[1:1];
      v_pool := v_pool[2:];
    ELSE
      -- The live candidates first, in their order; each lapsed one replaced while the pool lasts.
      v_new := v_live;
      FOREACH v_d IN ARRAY v_dead LOOP
        IF cardinality(v_pool) > 0 THEN
          v_new := v_new || v_pool[1];
          v_pool := v_pool[2:];
        ELSE
          v_new := v_new || v_d;
        END IF;
      END LOOP;
    END IF;
    WHILE cardinality(v_new) < s.candidates AND cardinality(v_pool) > 0 LOOP
      v_new := v_new || v_pool[1];
      v_pool := v_pool[2:];
    END LOOP;
    SELECT * INTO r FROM xn_cand_apply(s.allocation, s.slot, v_new, p_now, p_ttl);
    IF FOUND THEN RETURN QUERY SELECT s.allocation, s.slot, r.previous, r.node, r.epoch; END IF;
  END LOOP;
END $$;

-- As 002 for 'lease' allocations (a 'vrrp' slot never moves by its lease), then the 'vrrp' part.
CREATE OR REPLACE FUNCTION xn_sweep(p_now bigint, p_ttl bigint, p_margin bigint)
RETURNS TABLE (allocation int, slot int, previous text, node text, epoch int) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_to text;
  v_epoch int;
BEGIN
  FOR s IN SELECT x.* FROM slots x JOIN allocations a ON a.number = x.allocation
            WHERE a.failover = 'lease' AND x.node_id IS NOT NULL AND x.lease_expires_at + p_margin <= p_now
           ORDER BY x.allocation, x.slot FOR UPDATE OF x SKIP LOCKED
  LOOP
    SELECT nd.id INTO v_to FROM nodes nd JOIN allocations a ON a.farm_id = nd.farm_id
     WHERE a.number = s.allocation AND nd.exit_capable AND nd.id <> s.node_id
       AND nd.last_heartbeat IS NOT NULL AND nd.last_heartbeat + p_ttl > p_now
     ORDER BY (nd.id IS NOT DISTINCT FROM s.moving_to) DESC, (SELECT count(*) FROM slots y WHERE y.node_id = nd.id), nd.id LIMIT 1;
    CONTINUE WHEN v_to IS NULL;
    SELECT r.epoch INTO v_epoch FROM xn_assign_slot(s.allocation, s.slot, v_to, p_now, p_ttl) r;
    RETURN QUERY SELECT s.allocation, s.slot, s.node_id, v_to, v_epoch;
  END LOOP;
  RETURN QUERY SELECT * FROM xn_vrrp_sweep(p_now, p_ttl, p_margin);
END $$;

-- The step-downs of a slot, after a VRRP report or a planned handover (the caller holds the slot
-- row FOR UPDATE or takes it here):
--   - a candidate told to step down is done once it reports anything but MASTER;
--   - a planned handover (handover_to): once its target reports BACKUP (built, in the group), every
--     other master steps down; done when the target reports MASTER, void after 30 lease TTLs;
--   - two masters at once (each reported MASTER after TNoDB saw the other become master, both
--     within the lease TTL): all but the lowest rank step down, recorded as slot.dual_master.
--     (A dead master's last report is older than the new master's first: no false alarm.)
-- Only the views whose stepDown flips move.
CREATE FUNCTION xn_vrrp_check(p_allocation int, p_slot int, p_now bigint, p_ttl bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  h slot_candidates%ROWTYPE;
  k slot_candidates%ROWTYPE;
  v_touch text[];
  v_down text[];
  v_masters text[];
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
  WITH done AS (
    UPDATE slot_candidates c SET step_down = false
     WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.step_down AND c.vrrp_state IS DISTINCT FROM 'MASTER'
    RETURNING c.node_id
  ) SELECT coalesce(array_agg(d.node_id), '{}') INTO v_touch FROM done d;
  IF s.handover_to IS NOT NULL THEN
    SELECT * INTO h FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.node_id = s.handover_to;
    IF NOT FOUND OR s.handover_at + 30 * p_ttl <= p_now OR (h.vrrp_state = 'MASTER' AND h.reported_at + p_ttl > p_now) THEN
      UPDATE slots x SET handover_to = NULL, handover_at = NULL WHERE x.allocation = p_allocation AND x.slot = p_slot;
    ELSIF h.vrrp_state = 'BACKUP' AND h.reported_at + p_ttl > p_now THEN
      WITH d AS (
        UPDATE slot_candidates c SET step_down = true
         WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.node_id <> h.node_id AND NOT c.step_down
           AND c.vrrp_state = 'MASTER' AND c.reported_at + p_ttl > p_now
        RETURNING c.node_id
      ) SELECT v_touch || coalesce(array_agg(d.node_id), '{}') INTO v_touch FROM d;
    END IF;
  END IF;
  SELECT coalesce(array_agg(c.node_id ORDER BY c.rank), '{}') INTO v_masters
    FROM slot_candidates c JOIN nodes nd ON nd.id = c.node_id
   WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.vrrp_state = 'MASTER'
     AND c.reported_at + p_ttl > p_now AND nd.last_heartbeat + p_ttl > p_now;
  IF cardinality(v_masters) >= 2 THEN
    SELECT * INTO k FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.node_id = v_masters[1];
    WITH d AS (
      UPDATE slot_candidates c SET step_down = true
       WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.node_id = ANY (v_masters[2:]) AND NOT c.step_down
         AND c.reported_at > k.changed_at AND k.reported_at > c.changed_at
      RETURNING c.node_id
    ) SELECT coalesce(array_agg(d.node_id ORDER BY d.node_id), '{}') INTO v_down FROM d;
    IF cardinality(v_down) > 0 THEN
      INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
      VALUES (p_now, 'slot.dual_master', xn_alloc_farm(p_allocation), p_allocation, p_slot, k.node_id,
              jsonb_build_object('masters', to_jsonb(v_masters), 'kept', k.node_id, 'stepDown', to_jsonb(v_down)));
      v_touch := v_touch || v_down;
    END IF;
  END IF;
  PERFORM xn_touch(v_touch);
END $$;

-- A node's VRRP report (its heartbeat's vrrp[]): stored for the slots it is a candidate of (others
-- are ignored), a change of state recorded as an event (vrrp.master, vrrp.backup, vrrp.fault,
-- vrrp.stopped) and counted on the slot, then the slot's step-downs checked. No view moves for the
-- report itself. Returns how many items were stored.
CREATE FUNCTION xn_vrrp_report(p_node text, p_alloc int[], p_slot int[], p_state text[], p_prio int[], p_since bigint[],
                               p_now bigint, p_ttl bigint)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  k int;
  c slot_candidates%ROWTYPE;
  v_n int := 0;
BEGIN
  PERFORM 1 FROM slots x WHERE (x.allocation, x.slot) IN (SELECT * FROM unnest(p_alloc, p_slot))
   ORDER BY x.allocation, x.slot FOR UPDATE;
  FOR k IN 1 .. coalesce(array_length(p_alloc, 1), 0) LOOP
    SELECT * INTO c FROM slot_candidates y WHERE y.allocation = p_alloc[k] AND y.slot = p_slot[k] AND y.node_id = p_node;
    CONTINUE WHEN NOT FOUND;
    v_n := v_n + 1;
    IF c.vrrp_state IS DISTINCT FROM p_state[k] THEN
      INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
      VALUES (p_now, 'vrrp.' || lower(p_state[k]), xn_alloc_farm(c.allocation), c.allocation, c.slot, p_node,
              jsonb_strip_nulls(jsonb_build_object('from', c.vrrp_state, 'to', p_state[k], 'priority', p_prio[k],
                                                   'rank', c.rank, 'since', p_since[k])));
      UPDATE slots x SET vrrp_transitions = x.vrrp_transitions + 1 WHERE x.allocation = c.allocation AND x.slot = c.slot;
    END IF;
    UPDATE slot_candidates y
       SET vrrp_state = p_state[k], vrrp_priority = p_prio[k], vrrp_since = p_since[k], reported_at = p_now,
           changed_at = CASE WHEN y.vrrp_state IS DISTINCT FROM p_state[k] THEN p_now ELSE y.changed_at END
     WHERE y.allocation = c.allocation AND y.slot = c.slot AND y.node_id = p_node;
    PERFORM xn_vrrp_check(c.allocation, c.slot, p_now, p_ttl);
  END LOOP;
  RETURN v_n;
END $$;

-- Endpoints a candidate's ExitPoints learned from their peers (its heartbeat's endpoints[]): stored
-- on the NRs (not the ExitPoint itself) of networks whose slot has this node as a candidate; the
-- views of the slot's candidates (the only ones that show learnedEndpoint) move when one changes.
CREATE FUNCTION xn_endpoints_report(p_node text, p_network text[], p_nr int[], p_endpoint text[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  v_slots int[];
  v_touch text[];
BEGIN
  WITH upd AS (
    UPDATE resources r SET learned_endpoint = u.ep
      FROM unnest(p_network, p_nr, p_endpoint) u(net, nr, ep), networks n
     WHERE n.id = u.net AND r.network_id = n.id AND r.allocation = n.allocation AND r.nr_id = u.nr AND r.nr_id <> n.exit_id
       AND r.learned_endpoint IS DISTINCT FROM u.ep
       AND EXISTS (SELECT 1 FROM slot_candidates c WHERE c.allocation = n.allocation AND c.slot = n.slot AND c.node_id = p_node)
    RETURNING n.allocation * 16 + n.slot AS k
  ) SELECT coalesce(array_agg(DISTINCT upd.k), '{}') INTO v_slots FROM upd;
  IF cardinality(v_slots) = 0 THEN RETURN 0; END IF;
  SELECT coalesce(array_agg(DISTINCT c.node_id), '{}') INTO v_touch FROM slot_candidates c
   WHERE c.allocation * 16 + c.slot = ANY (v_slots);
  PERFORM xn_touch(v_touch);
  RETURN cardinality(v_slots);
END $$;

-- A planned handover in 'vrrp' mode (exitnode slot move): p_node becomes the first candidate
-- (added when it is none; the list trimmed to the allocation's `candidates` from its end, never
-- dropping a master), and every other master steps down once p_node reports BACKUP
-- (xn_vrrp_check). Never a rebuild: the candidates keep their gateways. Returns 'noop' when
-- p_node is first already and no other candidate reports master, else 'ok'.
CREATE FUNCTION xn_vrrp_move(p_allocation int, p_slot int, p_node text, p_now bigint, p_ttl bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_list text[];
  v_new text[];
  v_masters text[];
  v_n int;
  i int;
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
  SELECT coalesce(array_agg(c.node_id ORDER BY c.rank), '{}') INTO v_list
    FROM slot_candidates c WHERE c.allocation = p_allocation AND c.slot = p_slot;
  SELECT coalesce(array_agg(c.node_id), '{}') INTO v_masters FROM slot_candidates c
   WHERE c.allocation = p_allocation AND c.slot = p_slot AND c.vrrp_state = 'MASTER' AND c.reported_at + p_ttl > p_now
     AND c.node_id <> p_node;
  IF s.node_id = p_node AND v_list[1] IS NOT DISTINCT FROM p_node AND cardinality(v_masters) = 0 THEN
    RETURN 'noop';
  END IF;
  v_new := ARRAY[p_node] || array_remove(v_list, p_node);
  SELECT a.candidates INTO v_n FROM allocations a WHERE a.number = p_allocation;
  <<trim>>
  WHILE cardinality(v_new) > v_n LOOP
    FOR i IN REVERSE cardinality(v_new) .. 2 LOOP
      IF NOT (v_new[i] = ANY (v_masters)) THEN
        v_new := v_new[1:i - 1] || v_new[i + 1:];
        CONTINUE trim;
      END IF;
    END LOOP;
    EXIT;
  END LOOP;
  -- Set first, so that the move's event says "planned" (xn_ev_slot_move below).
  UPDATE slots x SET handover_to = p_node, handover_at = p_now WHERE x.allocation = p_allocation AND x.slot = p_slot;
  PERFORM xn_cand_apply(p_allocation, p_slot, v_new, p_now, p_ttl);
  UPDATE slots x SET lease_expires_at = p_now + p_ttl, renewed_at = p_now WHERE x.allocation = p_allocation AND x.slot = p_slot;
  PERFORM xn_vrrp_check(p_allocation, p_slot, p_now, p_ttl);
  RETURN 'ok';
END $$;

-- As 005, and a change of the first candidate to the target of a planned handover is "planned".
CREATE OR REPLACE FUNCTION xn_ev_slot_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(NEW.renewed_at, xn_db_now());
  v_hb bigint;
  v_cause text;
BEGIN
  IF OLD.node_id IS NULL THEN
    v_cause := 'assigned';
  ELSE
    SELECT last_heartbeat INTO v_hb FROM nodes WHERE id = OLD.node_id;
    IF (OLD.moving_to IS NOT NULL AND OLD.moving_to = NEW.node_id)
       OR (OLD.handover_to IS NOT NULL AND OLD.handover_to = NEW.node_id) THEN
      v_cause := 'planned';
    ELSIF OLD.health IS NOT NULL AND OLD.health <> 'ok' THEN
      v_cause := 'unhealthy';
    ELSIF OLD.lease_expires_at IS NOT NULL AND OLD.lease_expires_at <= v_now THEN
      v_cause := CASE WHEN v_hb > OLD.renewed_at THEN 'released' ELSE 'lapsed' END;
    ELSE
      v_cause := 'reassigned';
    END IF;
  END IF;
  NEW.moved_from := OLD.node_id;
  NEW.moved_from_heartbeat := v_hb;
  NEW.moved_at := v_now;
  NEW.move_cause := v_cause;
  INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
  VALUES (v_now, CASE WHEN OLD.node_id IS NULL THEN 'slot.assigned' ELSE 'slot.moved' END,
          xn_alloc_farm(NEW.allocation), NEW.allocation, NEW.slot, NEW.node_id,
          jsonb_strip_nulls(jsonb_build_object(
            'from', OLD.node_id, 'to', NEW.node_id, 'epoch', NEW.epoch, 'cause', v_cause,
            'reason', CASE WHEN v_cause = 'unhealthy' THEN OLD.health END,
            'fromLastHeartbeat', v_hb, 'leaseExpiredAt', OLD.lease_expires_at, 'nrs', NEW.nr_count)));
  RETURN NEW;
END $$;
