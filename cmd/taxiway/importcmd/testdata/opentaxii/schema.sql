-- OpenTAXII's tables as SQLAlchemy creates them on Postgres, from its models:
-- opentaxii/persistence/sqldb/taxii2models.py (GUID is uuid on Postgres,
-- UTCDateTime a timestamp without time zone holding UTC, JSON is json) and
-- opentaxii/auth/sqldb/models.py (accounts).
CREATE TYPE job_status_enum AS ENUM ('pending', 'complete');
CREATE TYPE job_detail_status_enum AS ENUM ('success', 'failure', 'pending');

CREATE TABLE opentaxii_api_root (
    id          uuid NOT NULL PRIMARY KEY,
    "default"   boolean NOT NULL,
    title       varchar(100) NOT NULL,
    description text,
    is_public   boolean NOT NULL
);
CREATE INDEX ix_opentaxii_api_root_title ON opentaxii_api_root (title);

CREATE TABLE opentaxii_job (
    id                  uuid NOT NULL PRIMARY KEY,
    api_root_id         uuid REFERENCES opentaxii_api_root (id) ON DELETE CASCADE,
    status              job_status_enum,
    request_timestamp   timestamp without time zone,
    completed_timestamp timestamp without time zone,
    total_count         integer,
    success_count       integer,
    failure_count       integer,
    pending_count       integer
);
CREATE INDEX ix_opentaxii_job_api_root_id_id ON opentaxii_job (api_root_id, id);

CREATE TABLE opentaxii_job_detail (
    id      uuid NOT NULL PRIMARY KEY,
    job_id  uuid REFERENCES opentaxii_job (id) ON DELETE CASCADE,
    stix_id varchar(100),
    version timestamp without time zone,
    message text,
    status  job_detail_status_enum
);
CREATE INDEX ix_opentaxii_job_detail_job_id ON opentaxii_job_detail (job_id);
CREATE INDEX ix_opentaxii_job_detail_stix_id ON opentaxii_job_detail (stix_id);

CREATE TABLE opentaxii_collection (
    id              uuid NOT NULL PRIMARY KEY,
    api_root_id     uuid REFERENCES opentaxii_api_root (id) ON DELETE CASCADE,
    title           varchar(100) NOT NULL,
    description     text,
    alias           varchar(100),
    is_public       boolean NOT NULL,
    is_public_write boolean NOT NULL,
    UNIQUE (api_root_id, alias)
);
CREATE INDEX ix_opentaxii_collection_title ON opentaxii_collection (title);

CREATE TABLE opentaxii_stixobject (
    pk              uuid NOT NULL PRIMARY KEY,
    id              varchar(100),
    collection_id   uuid REFERENCES opentaxii_collection (id) ON DELETE CASCADE,
    type            varchar(50),
    spec_version    varchar(10),
    date_added      timestamp without time zone,
    version         timestamp without time zone,
    serialized_data json,
    UNIQUE (collection_id, id, version)
);
CREATE INDEX ix_opentaxii_stixobject_id ON opentaxii_stixobject (id);
CREATE INDEX ix_opentaxii_stixobject_collection_id ON opentaxii_stixobject (collection_id);
CREATE INDEX ix_opentaxii_stixobject_type ON opentaxii_stixobject (type);
CREATE INDEX ix_opentaxii_stixobject_spec_version ON opentaxii_stixobject (spec_version);
CREATE INDEX ix_opentaxii_stixobject_date_added ON opentaxii_stixobject (date_added);
CREATE INDEX ix_opentaxii_stixobject_version ON opentaxii_stixobject (version);
CREATE INDEX ix_opentaxii_stixobject_col_date_added_id ON opentaxii_stixobject (collection_id, date_added, id);

CREATE TABLE accounts (
    id            serial PRIMARY KEY,
    username      varchar(256) UNIQUE,
    password_hash varchar(256),
    is_admin      boolean,
    _permissions  text NOT NULL
);
