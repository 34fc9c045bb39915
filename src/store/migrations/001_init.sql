-- TNoDB schema, version 1. Lists and keys only: never interface names, addresses or routes.
-- Times are milliseconds since the epoch from the server's (injectable) clock, not now(), so that
-- tests move time by hand and every instance judges leases by the same rule.

CREATE TABLE farms (
  id text PRIMARY KEY,
  created_at bigint NOT NULL
);

CREATE TABLE tenants (
  id text PRIMARY KEY,
  created_at bigint NOT NULL
);

-- Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE tokens (
  hash text PRIMARY KEY,
  scope text NOT NULL CHECK (scope IN ('admin', 'farm', 'tenant', 'node')),
  subject text,
  created_at bigint NOT NULL
);

CREATE TABLE allocations (
  number int PRIMARY KEY CHECK (number BETWEEN 1 AND 65535),
  farm_id text NOT NULL REFERENCES farms (id),
  prefix text NOT NULL UNIQUE,
  ipv4 jsonb,
  upstream_ll text NOT NULL,
  upstream_ip6 text NOT NULL,
  created_at bigint NOT NULL
);

CREATE TABLE nodes (
  id text PRIMARY KEY,
  farm_id text NOT NULL REFERENCES farms (id),
  public_ipv4 text,
  public_ipv6 text,
  exit_capable boolean NOT NULL,
  last_heartbeat bigint,
  created_at bigint NOT NULL
);

-- Kept apart from nodes so that bumping a view version never contends with heartbeats.
CREATE TABLE node_versions (
  node_id text PRIMARY KEY REFERENCES nodes (id),
  version bigint NOT NULL
);

-- One row per (allocation, slot), created with the allocation. The row is the allocator's lock:
-- every id of a slot is taken while holding it FOR UPDATE. high_water is the lowest id never
-- handed out; every id below it is either in resources or in quarantine.
CREATE TABLE slots (
  allocation int NOT NULL REFERENCES allocations (number),
  slot int NOT NULL CHECK (slot BETWEEN 1 AND 15),
  node_id text REFERENCES nodes (id),
  epoch int NOT NULL DEFAULT 0,
  lease_expires_at bigint,
  high_water int NOT NULL,
  nr_count int NOT NULL DEFAULT 0,
  PRIMARY KEY (allocation, slot)
);
CREATE INDEX slots_by_node ON slots (node_id);

CREATE TABLE networks (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id),
  name text NOT NULL,
  allocation int NOT NULL,
  slot int NOT NULL,
  exit_id int NOT NULL,
  created_at bigint NOT NULL,
  UNIQUE (tenant_id, name),
  FOREIGN KEY (allocation, slot) REFERENCES slots (allocation, slot)
);
CREATE INDEX networks_by_slot ON networks (allocation, slot);

-- The primary key is the guarantee that no id is ever handed out twice, whatever the code above it.
CREATE TABLE resources (
  allocation int NOT NULL,
  nr_id int NOT NULL CHECK (nr_id BETWEEN 4096 AND 65279),
  slot int NOT NULL CHECK (nr_id >> 12 = slot),
  network_id text NOT NULL REFERENCES networks (id),
  node_id text NOT NULL REFERENCES nodes (id),
  public_key text,
  created_at bigint NOT NULL,
  PRIMARY KEY (allocation, nr_id)
);
CREATE INDEX resources_by_network ON resources (network_id);
CREATE INDEX resources_by_node ON resources (node_id);

-- Ids of removed NRs, not handed out again before released_at + quarantine.
CREATE TABLE quarantine (
  allocation int NOT NULL,
  nr_id int NOT NULL,
  released_at bigint NOT NULL,
  PRIMARY KEY (allocation, nr_id)
);

CREATE TABLE idempotency (
  tenant_id text NOT NULL,
  key text NOT NULL,
  network_id text NOT NULL,
  node_id text NOT NULL,
  allocation int NOT NULL,
  nr_id int NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (tenant_id, key)
);

-- Bumps the view version of every node given, in id order so that concurrent transactions
-- never deadlock on these rows. No NOTIFY: PostgreSQL serialises the commits of every notifying
-- transaction (a global lock held through the WAL flush), which halved allocation throughput;
-- waiters on other instances poll the versions instead (src/api/watch.ts).
CREATE FUNCTION xn_touch(p_nodes text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  ids text[];
BEGIN
  SELECT array_agg(DISTINCT x ORDER BY x) INTO ids FROM unnest(p_nodes) x WHERE x IS NOT NULL;
  IF ids IS NULL THEN RETURN; END IF;
  PERFORM 1 FROM node_versions WHERE node_id = ANY (ids) ORDER BY node_id FOR UPDATE;
  UPDATE node_versions SET version = version + 1 WHERE node_id = ANY (ids);
END $$;

-- The nodes whose views show a network: every node with an NR of it.
CREATE FUNCTION xn_network_nodes(p_network text) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT node_id), '{}') FROM resources WHERE network_id = p_network
$$;

-- Takes the lowest free id of a locked slot: an id whose quarantine is over, else high_water.
-- Returns NULL when the slot is full. The caller holds the slot row FOR UPDATE.
CREATE FUNCTION xn_take_id(p_allocation int, p_slot int, p_now bigint, p_quarantine bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  v_id int;
  v_hw int;
  v_last int := CASE WHEN p_slot = 15 THEN 65279 ELSE (p_slot << 12) | 4095 END;
BEGIN
  SELECT q.nr_id INTO v_id FROM quarantine q
   WHERE q.allocation = p_allocation AND q.nr_id BETWEEN (p_slot << 12) AND v_last
     AND q.released_at + p_quarantine <= p_now
   ORDER BY q.nr_id LIMIT 1;
  IF v_id IS NOT NULL THEN
    DELETE FROM quarantine WHERE allocation = p_allocation AND nr_id = v_id;
    RETURN v_id;
  END IF;
  SELECT high_water INTO v_hw FROM slots WHERE allocation = p_allocation AND slot = p_slot;
  IF v_hw > v_last THEN RETURN NULL; END IF;
  UPDATE slots SET high_water = v_hw + 1 WHERE allocation = p_allocation AND slot = p_slot;
  RETURN v_hw;
END $$;

-- Adds an NR to a network in one round trip: slot lock, idempotency, lowest free id, insert.
-- status: ok | replay | no_network | no_node | node_farm | node_taken | full | idem_mismatch | idem_gone
-- detail: "<allocation> <prefix>" on ok/replay, so that the caller can shape the answer without a second query.
CREATE FUNCTION xn_add_resource(p_tenant text, p_network text, p_node text, p_key text, p_now bigint, p_quarantine bigint)
RETURNS TABLE (status text, nr_id int, nr_count int, detail text) LANGUAGE plpgsql AS $$
DECLARE
  n networks%ROWTYPE;
  v_farm text;
  v_prefix text;
  v_node_farm text;
  v_id int;
  v_hw int;
  v_count int;
  v_last int;
  i idempotency%ROWTYPE;
BEGIN
  SELECT * INTO n FROM networks WHERE id = p_network AND tenant_id = p_tenant;
  IF NOT FOUND THEN RETURN QUERY SELECT 'no_network', NULL::int, NULL::int, NULL::text; RETURN; END IF;
  -- Every allocation from this slot, on every instance, queues here.
  SELECT s.high_water, s.nr_count INTO v_hw, v_count FROM slots s WHERE s.allocation = n.allocation AND s.slot = n.slot FOR UPDATE;
  SELECT a.farm_id, a.prefix, nd.farm_id INTO v_farm, v_prefix, v_node_farm
    FROM allocations a LEFT JOIN nodes nd ON nd.id = p_node WHERE a.number = n.allocation;
  IF p_key IS NOT NULL THEN
    SELECT * INTO i FROM idempotency WHERE tenant_id = p_tenant AND key = p_key;
    IF FOUND THEN
      IF i.network_id <> p_network OR i.node_id <> p_node THEN
        RETURN QUERY SELECT 'idem_mismatch', i.nr_id, NULL::int, i.network_id || ' ' || i.node_id; RETURN;
      END IF;
      IF EXISTS (SELECT 1 FROM resources r WHERE r.allocation = i.allocation AND r.nr_id = i.nr_id AND r.network_id = i.network_id) THEN
        RETURN QUERY SELECT 'replay', i.nr_id, v_count, n.allocation || ' ' || v_prefix; RETURN;
      END IF;
      RETURN QUERY SELECT 'idem_gone', i.nr_id, NULL::int, NULL::text; RETURN;
    END IF;
  END IF;
  IF v_node_farm IS NULL THEN RETURN QUERY SELECT 'no_node', NULL::int, NULL::int, NULL::text; RETURN; END IF;
  IF v_farm <> v_node_farm THEN RETURN QUERY SELECT 'node_farm', NULL::int, NULL::int, v_farm; RETURN; END IF;
  SELECT r.nr_id INTO v_id FROM resources r WHERE r.network_id = p_network AND r.node_id = p_node LIMIT 1;
  IF FOUND THEN RETURN QUERY SELECT 'node_taken', v_id, NULL::int, NULL::text; RETURN; END IF;
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
    RETURN QUERY SELECT 'full', NULL::int, NULL::int,
      (SELECT count(*)::text FROM quarantine q WHERE q.allocation = n.allocation AND q.nr_id >> 12 = n.slot); RETURN;
  END IF;
  INSERT INTO resources (allocation, nr_id, slot, network_id, node_id, created_at)
    VALUES (n.allocation, v_id, n.slot, p_network, p_node, p_now);
  UPDATE slots s SET nr_count = v_count + 1, high_water = v_hw WHERE s.allocation = n.allocation AND s.slot = n.slot;
  IF p_key IS NOT NULL THEN
    INSERT INTO idempotency VALUES (p_tenant, p_key, p_network, p_node, n.allocation, v_id, p_now);
  END IF;
  PERFORM xn_touch(xn_network_nodes(p_network));
  RETURN QUERY SELECT 'ok', v_id, v_count + 1, n.allocation || ' ' || v_prefix;
END $$;

-- Creates a TN on the healthy slot (with a node and a live lease) with the fewest NRs, and its
-- ExitPoint NR on that slot's node. status: ok | no_slot | lapsed | full | name_taken
CREATE FUNCTION xn_create_network(p_tenant text, p_id text, p_name text, p_allocation int, p_now bigint, p_quarantine bigint)
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
    PERFORM xn_touch(ARRAY[s.node_id]);
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

-- Removes NRs (one, or all of a network when p_nr is NULL), quarantining their ids.
CREATE FUNCTION xn_release(p_network text, p_nr int, p_now bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  n networks%ROWTYPE;
  v_nodes text[];
  v_gone int;
BEGIN
  SELECT * INTO n FROM networks WHERE id = p_network;
  IF NOT FOUND THEN RETURN 0; END IF;
  PERFORM 1 FROM slots WHERE allocation = n.allocation AND slot = n.slot FOR UPDATE;
  v_nodes := xn_network_nodes(p_network);
  WITH gone AS (
    DELETE FROM resources r WHERE r.network_id = p_network AND (p_nr IS NULL OR r.nr_id = p_nr)
    RETURNING r.allocation, r.nr_id
  ), q AS (
    INSERT INTO quarantine SELECT g.allocation, g.nr_id, p_now FROM gone g
    ON CONFLICT (allocation, nr_id) DO UPDATE SET released_at = excluded.released_at
    RETURNING 1
  ) SELECT count(*) INTO v_gone FROM q;
  UPDATE slots SET nr_count = nr_count - v_gone WHERE allocation = n.allocation AND slot = n.slot;
  IF p_nr IS NULL THEN
    DELETE FROM idempotency WHERE network_id = p_network;
    DELETE FROM networks WHERE id = p_network;
  END IF;
  PERFORM xn_touch(v_nodes);
  RETURN v_gone;
END $$;

-- Gives a slot to a node: a new holder gets epoch + 1 and every ExitPoint NR of the slot moves
-- with it (its key is cleared: the new node publishes its own). The same holder only renews.
CREATE FUNCTION xn_assign_slot(p_allocation int, p_slot int, p_node text, p_now bigint, p_ttl bigint)
RETURNS TABLE (epoch int, lease_expires_at bigint, previous text) LANGUAGE plpgsql AS $$
DECLARE
  s slots%ROWTYPE;
  v_nodes text[];
BEGIN
  SELECT * INTO s FROM slots x WHERE x.allocation = p_allocation AND x.slot = p_slot FOR UPDATE;
  IF s.node_id IS NOT DISTINCT FROM p_node THEN
    UPDATE slots x SET lease_expires_at = p_now + p_ttl WHERE x.allocation = p_allocation AND x.slot = p_slot;
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
  UPDATE slots x SET node_id = p_node, epoch = s.epoch + 1, lease_expires_at = p_now + p_ttl
   WHERE x.allocation = p_allocation AND x.slot = p_slot;
  PERFORM xn_touch(v_nodes || ARRAY[s.node_id, p_node]);
  RETURN QUERY SELECT s.epoch + 1, p_now + p_ttl, s.node_id;
END $$;

-- Moves every slot whose lease lapsed (plus the fencing margin) to the healthy exit-capable node
-- of the same farm that holds the fewest slots. Safe on several instances at once: each slot is
-- taken with SKIP LOCKED and its lease checked again under the lock.
CREATE FUNCTION xn_sweep(p_now bigint, p_ttl bigint, p_margin bigint)
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
     ORDER BY (SELECT count(*) FROM slots y WHERE y.node_id = nd.id), nd.id LIMIT 1;
    CONTINUE WHEN v_to IS NULL;
    SELECT r.epoch INTO v_epoch FROM xn_assign_slot(s.allocation, s.slot, v_to, p_now, p_ttl) r;
    RETURN QUERY SELECT s.allocation, s.slot, s.node_id, v_to, v_epoch;
  END LOOP;
END $$;
