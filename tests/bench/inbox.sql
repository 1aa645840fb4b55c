-- inbox.sql - tests/bench/run's store for the conversations rows: @convs
-- conversations of tenant1 with @per messages each (100 000 and 10: one
-- million messages), written straight into the stack's SQLite file in one
-- transaction (about 30 s on 2 cores, where the webhook would take hours).
--
-- The documents have the shape conversations.c writes (conversations.h),
-- with every field its indexes use (status, lastMessageAt, priority,
-- queuedAt, assignedTo, customerId, twilioSid; conversationId, createdAt,
-- twilioSid on messages) and optional fields absent rather than null, as
-- conversations.c leaves them.  run creates nonflex's own indexes first
-- (GET /api/conversations runs nf_conv_store), so the rows go into
-- exactly the indexes the workers query.  Statuses: 80 % closed, 10 % ai,
-- 5 % queued, 5 % assigned to @agent (sarah); conversation i's last
-- message is i minutes before @base (unix seconds), its messages 5 s apart.
-- Ids ("a0..." conversations, "a1..." messages, CHa0/IMa1 SIDs) never
-- collide with nonflex's own (time-prefixed) or the webhook row's (CHb/IMb).
--
-- SPDX-License-Identifier: MIT

.bail on
.timeout 30000
PRAGMA cache_size = -262144;

CREATE TEMP TABLE bc AS
SELECT value AS i,
  printf('a0%022x', value) AS id,
  CASE WHEN value % 3 = 0 THEN '' ELSE 'whatsapp:' END || printf('+1555%07d', value) AS address,
  CASE WHEN value % 3 = 0 THEN 'sms' ELSE 'whatsapp' END AS channel,
  CASE WHEN value % 20 = 0 THEN 'queued' WHEN value % 20 = 1 THEN 'assigned'
       WHEN value % 10 = 2 THEN 'ai' ELSE 'closed' END AS status,
  @base - value * 60 AS t
FROM generate_series(0, @convs - 1);

BEGIN IMMEDIATE;

-- json_patch drops the null members: absent, as conversations.c leaves them.
INSERT INTO c_conversations (id, tenant, doc)
SELECT id, 'tenant1', json_patch(json_object('_id', id, 'channel', channel,
  'address', address, 'customerId', NULL, 'status', status,
  'assignedTo', CASE status WHEN 'assigned' THEN @agent END,
  'aiEnabled', json(CASE status WHEN 'ai' THEN 'true' ELSE 'false' END),
  'taskSid', NULL, 'twilioSid', printf('CHa0%030x', i), 'priority', i % 2,
  'preview', printf('Reply %d to conversation %d', @per - 1, i),
  'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', t - @per * 5, 'unixepoch'),
  'updatedAt', strftime('%Y-%m-%dT%H:%M:%fZ', t, 'unixepoch'),
  'lastMessageAt', strftime('%Y-%m-%dT%H:%M:%fZ', t, 'unixepoch'),
  'firstResponseAt', strftime('%Y-%m-%dT%H:%M:%fZ', t - @per * 5 + 5, 'unixepoch'),
  'version', 3, 'tenant', 'tenant1'), json_object(
  'queuedAt', CASE WHEN status IN ('queued', 'assigned')
      THEN strftime('%Y-%m-%dT%H:%M:%fZ', t - 1, 'unixepoch') END,
  'assignedAt', CASE status WHEN 'assigned' THEN strftime('%Y-%m-%dT%H:%M:%fZ', t, 'unixepoch') END,
  'closedAt', CASE status WHEN 'closed' THEN strftime('%Y-%m-%dT%H:%M:%fZ', t + 1, 'unixepoch') END,
  'disposition', CASE status WHEN 'closed' THEN 'resolved' END))
FROM bc;

-- Even messages are the customer's, odd ones the bot's answers.
INSERT INTO c_messages (id, tenant, doc)
SELECT printf('a1%022x', i * @per + j), 'tenant1', json_object(
  '_id', printf('a1%022x', i * @per + j), 'conversationId', id,
  'direction', CASE j % 2 WHEN 0 THEN 'inbound' ELSE 'outbound' END,
  'authorKind', CASE j % 2 WHEN 0 THEN 'customer' ELSE 'bot' END,
  'author', CASE j % 2 WHEN 0 THEN address ELSE 'bot' END,
  'body', CASE j % 2
      WHEN 0 THEN printf('Message %d of conversation %d: where is my order?', j, i)
      ELSE printf('Reply %d to conversation %d', j, i) END,
  'media', json('[]'), 'twilioSid', printf('IMa1%030x', i * @per + j),
  'delivery', CASE j % 2 WHEN 0 THEN 'received' ELSE 'delivered' END,
  'deliveryError', NULL, 'attempts', j % 2,
  'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', t - (@per - 1 - j) * 5, 'unixepoch'),
  'updatedAt', strftime('%Y-%m-%dT%H:%M:%fZ', t - (@per - 1 - j) * 5, 'unixepoch'),
  'tenant', 'tenant1')
FROM bc, (SELECT value AS j FROM generate_series(0, @per - 1));

COMMIT;
