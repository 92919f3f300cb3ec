-- depends: 0010_notify_idempotency
-- The resident ledger (电子台账, issue 13): who the resident is, how to get in, their risks,
-- emergency contacts in order, consent records, notes, and their status. Sites get an address.
-- The door code is held in its own column and only ever read by the reveal-access route.
-- `residents.active` stays the switch the pipeline and the duty screen read; the ledger keeps
-- it equal to (status <> 'discharged').

ALTER TABLE sites ADD COLUMN address text;

ALTER TABLE residents
    ADD COLUMN sex text CHECK (sex IN ('female', 'male', 'other')),
    ADD COLUMN birth_date date,
    ADD COLUMN access_notes text,
    ADD COLUMN door_code text,
    ADD COLUMN phone text,
    ADD COLUMN living_situation text
        CHECK (living_situation IN ('alone', 'with_spouse', 'with_family')),
    ADD COLUMN risks text[] NOT NULL DEFAULT '{}'
        CHECK (risks <@ ARRAY['disabled', 'dementia', 'very_old', 'alone', 'empty_nest']),
    ADD COLUMN care_level text,
    ADD COLUMN health_notes text,
    ADD COLUMN gp text,
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'in_hospital', 'discharged')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE residents SET status = 'discharged' WHERE NOT active;
CREATE INDEX residents_risks_idx ON residents USING gin (risks);

-- Emergency contacts, called in `position` order (1 first).
CREATE TABLE resident_contacts (
    resident_id  bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    position     int NOT NULL CHECK (position >= 1),
    name         text NOT NULL,
    relation     text NOT NULL DEFAULT '',
    phone        text NOT NULL,
    notified     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (resident_id, position)
);

-- Consent records: what was agreed (monitoring, family notifications), by whom, when, how.
CREATE TABLE resident_consents (
    id           bigserial PRIMARY KEY,
    resident_id  bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('monitoring', 'family_notifications')),
    granted      boolean NOT NULL,
    given_by     text NOT NULL,
    given_on     date NOT NULL,
    method       text NOT NULL,
    recorded_by  bigint REFERENCES users(id) ON DELETE SET NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resident_consents_resident_idx ON resident_consents (resident_id);

-- Free notes on a resident's timeline.
CREATE TABLE resident_notes (
    id           bigserial PRIMARY KEY,
    resident_id  bigint NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
    author_id    bigint REFERENCES users(id) ON DELETE SET NULL,
    author       text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resident_notes_resident_idx ON resident_notes (resident_id, created_at);
