-- Failover, stage 1 (DESIGN.md section 8): planned moves, the holder's health report per slot.
--   moving_to   the node an operator asked the slot to move to (exitnode slot move); the holder
--               fences itself, releases the slot in its next heartbeat and the slot goes there
--   health      the holder's last word on its gateway ('ok' or why it cannot forward)
--   renewed_at  server time of the last renewal (lease age in exitnode slot list)
ALTER TABLE slots ADD COLUMN moving_to text REFERENCES nodes (id);
ALTER TABLE slots ADD COLUMN health text;
ALTER TABLE slots ADD COLUMN health_at bigint;
ALTER TABLE slots ADD COLUMN renewed_at bigint;

CREATE OR REPLACE FUNCTION xn_assign_slot(p_allocation int, p_slot int, p_node text, p_now bigint, p_ttl bigint)
RETURNS TABLE (epoch int, lease_expires_at bigint, previous text) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_nodes text[];
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
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

-- As 001, but a slot with a planned move goes to its target when that node is healthy.
CREATE OR REPLACE FUNCTION xn_sweep(p_now bigint, p_ttl bigint, p_margin bigint)
RETURNS TABLE (allocation int, slot int, previous text, node text, epoch int) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_to text;
  v_epoch int;
BEGIN
  FOR s IN SELECT * FROM slots x WHERE x.node_id IS NOT NULL AND x.lease_expires_at + p_margin <= p_now
           ORDER BY x.allocation, x.slot FOR UPDATE SKIP LOCKED
  LOOP
    SELECT nd.id INTO v_to FROM nodes nd JOIN allocations a ON a.farm_id = nd.farm_id
     WHERE a.number = s.allocation AND nd.exit_capable AND nd.id <> s.node_id
       AND nd.last_heartbeat IS NOT NULL AND nd.last_heartbeat + p_ttl > p_now
     ORDER BY (nd.id IS NOT DISTINCT FROM s.moving_to) DESC, (SELECT count(*) FROM slots y WHERE y.node_id = nd.id), nd.id LIMIT 1;
    CONTINUE WHEN v_to IS NULL;
    SELECT r.epoch INTO v_epoch FROM xn_assign_slot(s.allocation, s.slot, v_to, p_now, p_ttl) r;
    RETURN QUERY SELECT s.allocation, s.slot, s.node_id, v_to, v_epoch;
  END LOOP;
END $$;
