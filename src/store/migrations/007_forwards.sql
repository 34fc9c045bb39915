-- Issue 13: IPv4 port forwards through the gateway and the IPv6 inbound policy of a network.
-- The primary key of forwards is the guarantee that no two forwards of a slot share
-- (GWPubIP4, protocol, port), whatever the concurrency and however many server instances:
-- GWPubIP4 is the slot's, so (allocation, slot, protocol, port) names it.
CREATE TABLE forwards (
  allocation int NOT NULL,
  slot int NOT NULL,
  protocol text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
  port int NOT NULL CHECK (port BETWEEN 1 AND 65535),
  network_id text NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  target text NOT NULL,
  target_port int NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
  idempotency_key text,
  created_at bigint NOT NULL,
  PRIMARY KEY (allocation, slot, protocol, port),
  FOREIGN KEY (allocation, slot) REFERENCES slots (allocation, slot)
);
CREATE INDEX forwards_by_network ON forwards (network_id);
CREATE UNIQUE INDEX forwards_by_key ON forwards (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- A network without a row here is open (the behaviour before issue 13).
CREATE TABLE inbound_policies (
  network_id text PRIMARY KEY REFERENCES networks (id) ON DELETE CASCADE,
  policy text NOT NULL CHECK (policy IN ('open', 'closed'))
);

-- Allow rules; enforced while the network's policy is closed. Rules of one network never overlap
-- (the gateway's interval set refuses overlapping elements): checked under an advisory lock.
CREATE TABLE inbound_rules (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  network_id text NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  protocol text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
  port_from int NOT NULL CHECK (port_from BETWEEN 1 AND 65535),
  port_to int NOT NULL CHECK (port_to BETWEEN port_from AND 65535),
  source text,
  created_at bigint NOT NULL
);
CREATE INDEX inbound_rules_by_network ON inbound_rules (network_id);
