-- The farm's history (issue 12): events recorded by the database itself, in the transaction that
-- makes the change, by triggers on the lists. Every path that changes a slot (the sweep, a farmer's
-- assignment, a planned move, a release), a node's heartbeat, a network or an NR therefore leaves
-- its event, on every server instance alike, and a rolled-back change leaves none. Nothing here
-- replaces a function of 001-003.
--
-- Times: `at` is the store's clock (milliseconds) where the changed row carries it (renewed_at of a
-- move, health_at of a health report, last_heartbeat, created_at); where it carries none (removals,
-- NR counts) it is the database's clock. `logged_at` is always the database's clock at insert: the
-- tail readers use it to tell a sequence hole that is still in flight (a transaction not yet
-- committed) from one that never fills (a rolled-back one), see src/store/events.ts.
--
-- Kinds, their fields and texts: src/store/event-kinds.ts (docs/events.md). Stage 2 (VRRP) adds its
-- own kinds (vrrp.*) from the agents' reports; the table needs no change for them.

CREATE FUNCTION xn_db_now() RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  at bigint NOT NULL,
  logged_at bigint NOT NULL DEFAULT xn_db_now(),
  kind text NOT NULL,
  farm_id text,
  tenant_id text,
  allocation int,
  slot int,
  node_id text,
  network_id text,
  nr_id int,
  data jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_farm ON events (farm_id, id);
CREATE INDEX events_by_tenant ON events (tenant_id, id) WHERE tenant_id IS NOT NULL;
CREATE INDEX events_by_time ON events (at);

-- What a failover's figures need after the move, kept on the slot (the move and the first healthy
-- report of the new holder are two transactions, often seconds apart).
ALTER TABLE slots ADD COLUMN moved_from text;
ALTER TABLE slots ADD COLUMN moved_from_heartbeat bigint;
ALTER TABLE slots ADD COLUMN moved_at bigint;
ALTER TABLE slots ADD COLUMN move_cause text;
-- The epoch whose first healthy report has been recorded (a failover's end is recorded once).
ALTER TABLE slots ADD COLUMN served_epoch int;

-- silent_since: the last heartbeat of a node the watch (xn_ev_watch_nodes) found silent; cleared by
-- its next heartbeat. agent_report: the agent's own account (POST /v1/nodes/{id}/report).
ALTER TABLE nodes ADD COLUMN silent_since bigint;
ALTER TABLE nodes ADD COLUMN agent_report jsonb;
ALTER TABLE nodes ADD COLUMN agent_report_at bigint;

CREATE FUNCTION xn_alloc_farm(p_allocation int) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT farm_id FROM allocations WHERE number = p_allocation
$$;

-- A slot changes hands: why, and what the failover's cost will be measured from.
--   assigned    the slot had no node
--   planned     the farmer's planned move (exitnode slot move) reached its target
--   unhealthy   the holder reported its gateway unable to forward and stopped renewing
--   released    the holder heartbeated but gave the slot up (fenced)
--   lapsed      the holder went silent: its lease ran out
--   reassigned  the farmer gave a live slot to another node
CREATE FUNCTION xn_ev_slot_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(NEW.renewed_at, xn_db_now());
  v_hb bigint;
  v_cause text;
BEGIN
  IF OLD.node_id IS NULL THEN
    v_cause := 'assigned';
  ELSE
    SELECT last_heartbeat INTO v_hb FROM nodes WHERE id = OLD.node_id;
    IF OLD.moving_to IS NOT NULL AND OLD.moving_to = NEW.node_id THEN
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
CREATE TRIGGER xn_ev_slot_move BEFORE UPDATE OF node_id ON slots
  FOR EACH ROW WHEN (OLD.node_id IS DISTINCT FROM NEW.node_id AND NEW.node_id IS NOT NULL)
  EXECUTE FUNCTION xn_ev_slot_move();

-- The holder's health report flips (ok ↔ not ok), or the first report of an epoch arrives. The
-- first healthy report after a move ends a failover: its cost is from the old holder's last
-- heartbeat (when it was last known to answer) to this report (the new gateway forwards).
CREATE FUNCTION xn_ev_slot_health() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(NEW.health_at, xn_db_now());
  v_from bigint;
BEGIN
  IF NEW.health = 'ok' AND NEW.moved_from IS NOT NULL AND NEW.served_epoch IS DISTINCT FROM NEW.epoch THEN
    v_from := coalesce(NEW.moved_from_heartbeat, NEW.moved_at);
    INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
    VALUES (v_now, 'failover', xn_alloc_farm(NEW.allocation), NEW.allocation, NEW.slot, NEW.node_id,
            jsonb_strip_nulls(jsonb_build_object(
              'from', NEW.moved_from, 'to', NEW.node_id, 'epoch', NEW.epoch, 'cause', NEW.move_cause,
              'fromLastHeartbeat', NEW.moved_from_heartbeat, 'movedAt', NEW.moved_at, 'firstHealthyAt', v_now,
              'costMs', v_now - v_from, 'rebuildMs', v_now - NEW.moved_at, 'nrs', NEW.nr_count)));
  ELSIF (OLD.health = 'ok') IS DISTINCT FROM (NEW.health = 'ok') THEN
    INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
    VALUES (v_now, CASE WHEN NEW.health = 'ok' THEN 'gateway.healthy' ELSE 'gateway.unhealthy' END,
            xn_alloc_farm(NEW.allocation), NEW.allocation, NEW.slot, NEW.node_id,
            jsonb_strip_nulls(jsonb_build_object(
              'epoch', NEW.epoch, 'reason', CASE WHEN NEW.health <> 'ok' THEN NEW.health END,
              'first', OLD.health IS NULL)));
  END IF;
  IF NEW.health = 'ok' THEN
    NEW.served_epoch := NEW.epoch;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER xn_ev_slot_health BEFORE UPDATE OF health ON slots
  FOR EACH ROW WHEN (NEW.health IS NOT NULL AND OLD.node_id IS NOT DISTINCT FROM NEW.node_id
                     AND ((OLD.health = 'ok') IS DISTINCT FROM (NEW.health = 'ok')
                          OR (NEW.health = 'ok' AND NEW.served_epoch IS DISTINCT FROM NEW.epoch)))
  EXECUTE FUNCTION xn_ev_slot_health();

-- A planned move asked for (the holder fences and releases; slot.moved follows).
CREATE FUNCTION xn_ev_slot_moving() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
  VALUES (xn_db_now(), 'slot.move-planned', xn_alloc_farm(NEW.allocation), NEW.allocation, NEW.slot, NEW.node_id,
          jsonb_build_object('from', NEW.node_id, 'to', NEW.moving_to, 'epoch', NEW.epoch));
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_slot_moving AFTER UPDATE OF moving_to ON slots
  FOR EACH ROW WHEN (NEW.moving_to IS NOT NULL AND OLD.moving_to IS DISTINCT FROM NEW.moving_to)
  EXECUTE FUNCTION xn_ev_slot_moving();

-- A slot's NR count crosses the advisory (2048, SLOT_WARN_NRS in src/api/context.ts) or reaches
-- its capacity (4096 ids; 3840 in slot 15, whose ff00-ffff are reserved).
CREATE FUNCTION xn_ev_slot_fill() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_cap int := CASE WHEN NEW.slot = 15 THEN 3840 ELSE 4096 END;
BEGIN
  INSERT INTO events (at, kind, farm_id, allocation, slot, node_id, data)
  VALUES (xn_db_now(), CASE WHEN NEW.nr_count >= v_cap THEN 'slot.full' ELSE 'slot.advisory' END,
          xn_alloc_farm(NEW.allocation), NEW.allocation, NEW.slot, NEW.node_id,
          jsonb_build_object('nrs', NEW.nr_count, 'capacity', v_cap, 'advisory', 2048));
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_slot_fill AFTER UPDATE OF nr_count ON slots
  FOR EACH ROW WHEN ((OLD.nr_count <= 2048 AND NEW.nr_count > 2048)
                  OR (NEW.nr_count >= CASE WHEN NEW.slot = 15 THEN 3840 ELSE 4096 END
                      AND OLD.nr_count < CASE WHEN NEW.slot = 15 THEN 3840 ELSE 4096 END))
  EXECUTE FUNCTION xn_ev_slot_fill();

-- Networks and NRs. A network's ExitPoint NR is told with the network (network.created); the NRs of
-- a deleted network with it (network.deleted), so nr.removed is only for single removals: those
-- after which the network still has NRs.
CREATE FUNCTION xn_ev_network_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO events (at, kind, farm_id, tenant_id, allocation, slot, node_id, network_id, nr_id, data)
  SELECT NEW.created_at, 'network.created', a.farm_id, NEW.tenant_id, NEW.allocation, NEW.slot, s.node_id, NEW.id,
         NEW.exit_id, jsonb_build_object('name', NEW.name)
    FROM allocations a LEFT JOIN slots s ON s.allocation = NEW.allocation AND s.slot = NEW.slot
   WHERE a.number = NEW.allocation;
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_network_created AFTER INSERT ON networks FOR EACH ROW EXECUTE FUNCTION xn_ev_network_created();

CREATE FUNCTION xn_ev_network_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO events (at, kind, farm_id, tenant_id, allocation, slot, network_id, nr_id, data)
  VALUES (xn_db_now(), 'network.deleted', xn_alloc_farm(OLD.allocation), OLD.tenant_id, OLD.allocation, OLD.slot,
          OLD.id, OLD.exit_id, jsonb_build_object('name', OLD.name));
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_network_deleted AFTER DELETE ON networks FOR EACH ROW EXECUTE FUNCTION xn_ev_network_deleted();

CREATE FUNCTION xn_ev_nr_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO events (at, kind, farm_id, tenant_id, allocation, slot, node_id, network_id, nr_id, data)
  SELECT NEW.created_at, 'nr.added', a.farm_id, n.tenant_id, NEW.allocation, NEW.slot, NEW.node_id, NEW.network_id,
         NEW.nr_id, jsonb_build_object('name', n.name)
    FROM networks n JOIN allocations a ON a.number = n.allocation
   WHERE n.id = NEW.network_id AND n.exit_id <> NEW.nr_id;
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_nr_added AFTER INSERT ON resources FOR EACH ROW EXECUTE FUNCTION xn_ev_nr_added();

CREATE FUNCTION xn_ev_nr_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO events (at, kind, farm_id, tenant_id, allocation, slot, node_id, network_id, nr_id, data)
  SELECT xn_db_now(), 'nr.removed', a.farm_id, n.tenant_id, g.allocation, g.slot, g.node_id, g.network_id, g.nr_id,
         jsonb_build_object('name', n.name)
    FROM gone g JOIN networks n ON n.id = g.network_id JOIN allocations a ON a.number = g.allocation
   WHERE EXISTS (SELECT 1 FROM resources r WHERE r.network_id = g.network_id)
   ORDER BY g.nr_id;
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_nr_removed AFTER DELETE ON resources REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION xn_ev_nr_removed();

-- A node's first heartbeat, and its first one after the watch found it silent.
CREATE FUNCTION xn_ev_node_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.last_heartbeat IS NULL THEN
    INSERT INTO events (at, kind, farm_id, node_id, data)
    VALUES (NEW.last_heartbeat, 'node.up', NEW.farm_id, NEW.id, jsonb_build_object('exitCapable', NEW.exit_capable));
  ELSE
    INSERT INTO events (at, kind, farm_id, node_id, data)
    VALUES (NEW.last_heartbeat, 'node.back', NEW.farm_id, NEW.id,
            jsonb_build_object('lastHeartbeat', OLD.last_heartbeat, 'silentMs', NEW.last_heartbeat - OLD.last_heartbeat));
  END IF;
  NEW.silent_since := NULL;
  RETURN NEW;
END $$;
CREATE TRIGGER xn_ev_node_heartbeat BEFORE UPDATE OF last_heartbeat ON nodes
  FOR EACH ROW WHEN (NEW.last_heartbeat IS NOT NULL AND (OLD.last_heartbeat IS NULL OR OLD.silent_since IS NOT NULL))
  EXECUTE FUNCTION xn_ev_node_heartbeat();

-- Nodes whose last heartbeat is older than the lease TTL: marked silent once, with an event that
-- names the slots they still hold (which the sweep moves). Returns how many it found.
CREATE FUNCTION xn_ev_watch_nodes(p_now bigint, p_ttl bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  v_n int;
BEGIN
  WITH silent AS (
    UPDATE nodes SET silent_since = last_heartbeat
     WHERE silent_since IS NULL AND last_heartbeat IS NOT NULL AND last_heartbeat + p_ttl <= p_now
    RETURNING id, farm_id, last_heartbeat
  ), ev AS (
    INSERT INTO events (at, kind, farm_id, node_id, data)
    SELECT p_now, 'node.silent', s.farm_id, s.id,
           jsonb_build_object('lastHeartbeat', s.last_heartbeat, 'silentMs', p_now - s.last_heartbeat,
             'slots', (SELECT coalesce(jsonb_agg(x.allocation || '/' || x.slot ORDER BY x.allocation, x.slot), '[]')
                         FROM slots x WHERE x.node_id = s.id))
      FROM silent s ORDER BY s.id
    RETURNING 1
  ) SELECT count(*) INTO v_n FROM ev;
  RETURN v_n;
END $$;

-- What the agent says about itself: drift it repaired, and its status turning degraded or ok.
CREATE FUNCTION xn_ev_agent_report() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_now bigint := coalesce(NEW.agent_report_at, xn_db_now());
BEGIN
  IF NEW.agent_report->'drift'->>'seq' IS DISTINCT FROM OLD.agent_report->'drift'->>'seq'
     AND NEW.agent_report->'drift'->>'seq' IS NOT NULL THEN
    INSERT INTO events (at, kind, farm_id, node_id, data)
    VALUES (v_now, 'node.drift-repaired', NEW.farm_id, NEW.id,
            jsonb_strip_nulls(jsonb_build_object('objects', NEW.agent_report->'drift'->'objects',
              'version', NEW.agent_report->'drift'->'version')));
  END IF;
  IF (NEW.agent_report->>'status') IS DISTINCT FROM (OLD.agent_report->>'status')
     AND (OLD.agent_report IS NOT NULL OR NEW.agent_report->>'status' <> 'ok') THEN
    INSERT INTO events (at, kind, farm_id, node_id, data)
    VALUES (v_now, 'node.status', NEW.farm_id, NEW.id,
            jsonb_strip_nulls(jsonb_build_object('status', NEW.agent_report->'status',
              'failures', NEW.agent_report->'lastPass'->'failures',
              'appliedVersion', NEW.agent_report->'appliedVersion')));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER xn_ev_agent_report AFTER UPDATE OF agent_report ON nodes
  FOR EACH ROW WHEN (NEW.agent_report IS NOT NULL) EXECUTE FUNCTION xn_ev_agent_report();
