-- An OpenTAXII deployment: API roots, collections (private, public, publicly writable),
-- objects with several versions and equal date_added values, jobs, and accounts with
-- Werkzeug hashes (pbkdf2 and scrypt), an admin and per-collection permissions.
INSERT INTO opentaxii_api_root VALUES ('6ba7b810-9dad-11d1-80b4-00c04fd430c8', true, 'Default root', 'Intel sharing', false), ('8f7b6c1e-2f4a-4c3b-9d5e-0a1b2c3d4e5f', false, 'Public root', NULL, true);
INSERT INTO opentaxii_collection VALUES
  ('a1b2c3d4-0000-1000-8000-000000000001', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'Intel', 'Private intel', 'intel', false, false),
  ('c2c2c2c2-2222-4222-8222-222222222222', '8f7b6c1e-2f4a-4c3b-9d5e-0a1b2c3d4e5f', 'Public feed', NULL, 'public-feed', true, false),
  ('c3c3c3c3-3333-4333-8333-333333333333', '8f7b6c1e-2f4a-4c3b-9d5e-0a1b2c3d4e5f', 'Public inbox', NULL, NULL, true, true),
  ('c4c4c4c4-4444-4444-8444-444444444444', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'Admins only', NULL, NULL, false, false);
INSERT INTO opentaxii_stixobject VALUES
  ('00000000-0000-4000-8000-000000000001', 'indicator--11111111-1111-4111-8111-111111111111', 'a1b2c3d4-0000-1000-8000-000000000001', 'indicator', '2.1', '2021-01-01 00:00:00.000001', '2020-01-01 00:00:00', '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "indicator", "pattern": "[ipv4-addr:value = ''198.51.100.1'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
  ('00000000-0000-4000-8000-000000000002', 'indicator--22222222-2222-4222-8222-222222222222', 'a1b2c3d4-0000-1000-8000-000000000001', 'indicator', '2.1', '2021-01-01 00:00:00.000001', '2020-01-01 00:00:00', '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "indicator", "pattern": "[ipv4-addr:value = ''198.51.100.2'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
  ('00000000-0000-4000-8000-000000000003', 'indicator--11111111-1111-4111-8111-111111111111', 'a1b2c3d4-0000-1000-8000-000000000001', 'indicator', '2.1', '2021-01-02 00:00:00', '2020-02-01 00:00:00', '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-02-01T00:00:00.000Z", "name": "indicator", "pattern": "[ipv4-addr:value = ''198.51.100.3'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
  ('00000000-0000-4000-8000-000000000004', 'malware--33333333-3333-4333-8333-333333333333', 'a1b2c3d4-0000-1000-8000-000000000001', 'malware', '2.1', '2021-01-03 00:00:00', '2020-01-01 00:00:00', '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "Poison Ivy", "is_family": true}'),
  ('00000000-0000-4000-8000-000000000005', 'indicator--11111111-1111-4111-8111-111111111111', 'a1b2c3d4-0000-1000-8000-000000000001', 'indicator', '2.1', '2021-01-04 00:00:00', '2020-01-15 00:00:00', '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-15T00:00:00.000Z", "name": "indicator", "pattern": "[ipv4-addr:value = ''198.51.100.4'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
  ('00000000-0000-4000-8000-000000000006', 'indicator--44444444-4444-4444-8444-444444444444', 'c2c2c2c2-2222-4222-8222-222222222222', 'indicator', '2.1', '2022-05-01 10:00:00.5', '2022-01-01 00:00:00', '{"created": "2022-01-01T00:00:00Z", "modified": "2022-01-01T00:00:00Z", "name": "indicator", "pattern": "[domain-name:value = ''example.org'']", "pattern_type": "stix", "valid_from": "2022-01-01T00:00:00Z"}'),
  ('00000000-0000-4000-8000-000000000007', 'identity--55555555-5555-4555-8555-555555555555', 'c4c4c4c4-4444-4444-8444-444444444444', 'identity', '2.1', '2022-06-01 00:00:00', '2022-01-01 00:00:00', '{"created": "2022-01-01T00:00:00.000Z", "modified": "2022-01-01T00:00:00.000Z", "name": "ACME", "identity_class": "organization"}');
-- Many more, for paging: one version each, one per second.
INSERT INTO opentaxii_stixobject
SELECT md5('pk' || i)::uuid, 'indicator--' || md5('id' || i)::uuid, 'a1b2c3d4-0000-1000-8000-000000000001', 'indicator', '2.1',
       timestamp '2021-02-01 00:00:00' + i * interval '1 second', timestamp '2020-03-01 00:00:00',
       json_build_object('created', '2020-03-01T00:00:00.000Z', 'modified', '2020-03-01T00:00:00.000Z', 'name', 'bulk ' || i,
                         'pattern', format('[ipv4-addr:value = ''203.0.113.%s'']', i % 250), 'pattern_type', 'stix', 'valid_from', '2020-03-01T00:00:00Z')
FROM generate_series(1, 120) i;
INSERT INTO opentaxii_job VALUES ('9a9a9a9a-0000-4000-8000-000000000001', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'complete', '2021-01-01 00:00:00', '2021-01-01 00:00:01', 2, 2, 0, 0);
INSERT INTO opentaxii_job_detail VALUES ('9a9a9a9a-0000-4000-8000-000000000002', '9a9a9a9a-0000-4000-8000-000000000001', 'indicator--11111111-1111-4111-8111-111111111111', '2020-01-01 00:00:00', '', 'success'), ('9a9a9a9a-0000-4000-8000-000000000003', '9a9a9a9a-0000-4000-8000-000000000001', 'indicator--22222222-2222-4222-8222-222222222222', '2020-01-01 00:00:00', '', 'success');
INSERT INTO accounts (username, password_hash, is_admin, _permissions) VALUES
  ('alice', 'pbkdf2:sha256:600000$s4ltAlice$6c2589dbfe95daf0545fe24f0c3a4579d42320aca0e59fffa844aef24803b51f', false, '{"a1b2c3d4-0000-1000-8000-000000000001": ["read"], "c4c4c4c4-4444-4444-8444-444444444444": ["read", "write"], "old-taxii1-collection": "modify"}'),
  ('bob', 'scrypt:32768:8:1$s4ltBob$fd7e550e82d35d5d822f2cb3fb000b4c9d64c02e9ddc8f619f9fa43d44c3c5f7dd0bbb124c95f073be455c3173006bc5004b59d8ec634f52ead0b767d58c348e', false, '{"a1b2c3d4-0000-1000-8000-000000000001": ["read", "write"]}'),
  ('root', 'pbkdf2:sha256:600000$s4ltRoot$a822570983f6e7ac2aa555d4b68383ea6e34434b4aa5ca16ac59c71abaf5544c', true, '{}');
