-- Hosts one container's extensions may call beyond the host's egress
-- policy, set by the platform with the master token (`PUT /api/egress/{c}`).
CREATE TABLE container_egress (
    container  TEXT   PRIMARY KEY,
    allow      TEXT   NOT NULL,  -- JSON array of HOST[:PORT]
    updated_at BIGINT NOT NULL   -- Unix seconds
);
