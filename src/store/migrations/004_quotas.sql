-- Hardening (issue 11): quotas, and one WireGuard key per NR.
--
-- Quotas per tenant (networks, NRs) and per farm (allocations, nodes), set by the admin
-- (PUT /v1/tenants/{id}/quota, PUT /v1/farms/{id}/quota); the column defaults are the defaults.
-- Triggers enforce them under the owner's row lock, so that concurrent requests, on any number of
-- instances, cannot pass a limit together. A refusal raises SQLSTATE XNQ01 with the message
-- "xn_quota <limit> <max> <kind> <subject>", which the store turns into QUOTA_EXCEEDED.
-- A tenant's NRs are counted in tenants.nr_count (kept by the trigger on resources: adding NRs
-- is the hot path, a count(*) per insert is not); the other counts are taken when inserting.
ALTER TABLE tenants
  ADD COLUMN max_networks int NOT NULL DEFAULT 256 CHECK (max_networks >= 0),
  ADD COLUMN max_nrs int NOT NULL DEFAULT 1024 CHECK (max_nrs >= 0),
  ADD COLUMN nr_count int NOT NULL DEFAULT 0;
ALTER TABLE farms
  ADD COLUMN max_allocations int NOT NULL DEFAULT 8 CHECK (max_allocations >= 0),
  ADD COLUMN max_nodes int NOT NULL DEFAULT 256 CHECK (max_nodes >= 0);

UPDATE tenants t SET nr_count = (
  SELECT count(*) FROM resources r JOIN networks n ON n.id = r.network_id WHERE n.tenant_id = t.id
);

CREATE FUNCTION xn_quota_refuse(p_limit text, p_max int, p_kind text, p_subject text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'XNQ01', MESSAGE = 'xn_quota ' || p_limit || ' ' || p_max || ' ' || p_kind || ' ' || p_subject;
END $$;

CREATE FUNCTION xn_quota_networks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_max int;
BEGIN
  SELECT max_networks INTO v_max FROM tenants WHERE id = NEW.tenant_id FOR UPDATE;
  IF (SELECT count(*) FROM networks WHERE tenant_id = NEW.tenant_id) >= v_max THEN
    PERFORM xn_quota_refuse('networks', v_max, 'tenant', NEW.tenant_id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER networks_quota BEFORE INSERT ON networks FOR EACH ROW EXECUTE FUNCTION xn_quota_networks();

CREATE FUNCTION xn_quota_nrs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_tenant text;
  v_count int;
  v_max int;
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE tenants t SET nr_count = t.nr_count - 1 FROM networks n WHERE n.id = OLD.network_id AND t.id = n.tenant_id;
    RETURN OLD;
  END IF;
  UPDATE tenants t SET nr_count = t.nr_count + 1 FROM networks n WHERE n.id = NEW.network_id AND t.id = n.tenant_id
    RETURNING t.id, t.nr_count, t.max_nrs INTO v_tenant, v_count, v_max;
  IF v_count > v_max THEN
    PERFORM xn_quota_refuse('nrs', v_max, 'tenant', v_tenant);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER resources_quota AFTER INSERT OR DELETE ON resources FOR EACH ROW EXECUTE FUNCTION xn_quota_nrs();

CREATE FUNCTION xn_quota_allocations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_max int;
BEGIN
  SELECT max_allocations INTO v_max FROM farms WHERE id = NEW.farm_id FOR UPDATE;
  IF (SELECT count(*) FROM allocations WHERE farm_id = NEW.farm_id) >= v_max THEN
    PERFORM xn_quota_refuse('allocations', v_max, 'farm', NEW.farm_id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER allocations_quota BEFORE INSERT ON allocations FOR EACH ROW EXECUTE FUNCTION xn_quota_allocations();

CREATE FUNCTION xn_quota_nodes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_max int;
BEGIN
  SELECT max_nodes INTO v_max FROM farms WHERE id = NEW.farm_id FOR UPDATE;
  IF (SELECT count(*) FROM nodes WHERE farm_id = NEW.farm_id) >= v_max THEN
    PERFORM xn_quota_refuse('nodes', v_max, 'farm', NEW.farm_id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER nodes_quota BEFORE INSERT ON nodes FOR EACH ROW EXECUTE FUNCTION xn_quota_nodes();

-- One key per NR: a node could publish another NR's key for its own, giving a third node two
-- peers with one key (WireGuard then routes that key's traffic to one of them only). A key
-- found on several NRs already has no rightful owner we could tell: it is cleared on all of
-- them, their nodes' views move, and each hosting agent publishes its own key again.
WITH dup AS (
  SELECT public_key FROM resources WHERE public_key IS NOT NULL GROUP BY public_key HAVING count(*) > 1
), cleared AS (
  UPDATE resources r SET public_key = NULL FROM dup WHERE r.public_key = dup.public_key RETURNING r.network_id
)
SELECT xn_touch(array_agg(n)) FROM (SELECT unnest(xn_network_nodes(c.network_id)) n FROM (SELECT DISTINCT network_id FROM cleared) c) x;
CREATE UNIQUE INDEX resources_public_key ON resources (public_key) WHERE public_key IS NOT NULL;
