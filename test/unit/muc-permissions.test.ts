// modules/muc permission rules without a server (XEP-0045 §5 privileges, as in Prosody): who may
// change whose role and affiliation, and the default role by affiliation and room type.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJid } from '../../server/jid.js';
import { parseXml } from '../../server/xml/parser.js';
import { Room } from '../../modules/muc/room.js';
import { checkAffiliationChange, checkOwnersRemain, checkRoleChange } from '../../modules/muc/affiliations.js';
import { defaultRoomConfig, mucConfigSchema } from '../../modules/muc/config.js';
import { forgetAccount } from '../../modules/muc/presence.js';
import { StanzaError } from '../../server/errors.js';
import type { Affiliation, Occupant, Role } from '../../modules/muc/types.js';

function room(affiliations: Record<string, Exclude<Affiliation, 'none'>>, occupants: [string, string, Role][] = []): Room {
  const r = new Room(parseJid('room@conference.localhost'), defaultRoomConfig(mucConfigSchema.parse({})), { deliver: () => true });
  for (const [jid, affiliation] of Object.entries(affiliations)) r.affiliations.set(jid, { affiliation });
  for (const [nick, bare, role] of occupants) {
    const occupant: Occupant = { nick, bareJid: bare, role, sessions: new Map() };
    r.addSession(occupant, `${bare}/r`, parseXml('<presence/>'));
  }
  return r;
}

function outcome(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof StanzaError ? err.condition : String(err);
  }
}

describe('muc: affiliation changes', () => {
  const r = room({ 'o@x': 'owner', 'a@x': 'admin', 'a2@x': 'admin', 'm@x': 'member' });
  const cases: [string, string, Affiliation, string][] = [
    ['o@x', 'a@x', 'none', 'ok'], // owners may edit every list
    ['o@x', 'u@x', 'owner', 'ok'],
    ['o@x', 'o@x', 'outcast', 'conflict'], // §9.1: banning oneself
    ['a@x', 'u@x', 'outcast', 'ok'], // admins ban and edit members
    ['a@x', 'u@x', 'member', 'ok'],
    ['a@x', 'm@x', 'none', 'ok'],
    ['a@x', 'u@x', 'admin', 'not-allowed'], // not above themselves
    ['a@x', 'a2@x', 'outcast', 'not-allowed'],
    ['a@x', 'o@x', 'member', 'not-allowed'],
    ['a@x', 'a@x', 'outcast', 'conflict'],
    ['m@x', 'u@x', 'member', 'forbidden'], // members and others may not
    ['u@x', 'u@x', 'member', 'forbidden'],
  ];
  for (const [actor, target, affiliation, expected] of cases) {
    test(`${actor} making ${target} ${affiliation} → ${expected}`, () => {
      assert.equal(outcome(() => checkAffiliationChange(r, actor, target, affiliation)), expected);
    });
  }

  test('the last owner may not go; with another owner left it may', () => {
    assert.equal(outcome(() => checkOwnersRemain(r, [{ jid: 'o@x', affiliation: 'admin' }])), 'conflict');
    assert.equal(outcome(() => checkOwnersRemain(r, [{ jid: 'a@x', affiliation: 'owner' }, { jid: 'o@x', affiliation: 'none' }])), 'ok');
  });
});

describe('muc: role changes', () => {
  const r = room({ 'o@x': 'owner', 'a@x': 'admin', 'a2@x': 'admin', 'm@x': 'member' }, [
    ['O', 'o@x', 'moderator'],
    ['A', 'a@x', 'moderator'],
    ['A2', 'a2@x', 'moderator'],
    ['M', 'm@x', 'moderator'], // a member made moderator
    ['P', 'p@x', 'participant'],
    ['V', 'v@x', 'visitor'],
  ]);
  const target = (nick: string) => r.occupants.get(nick)!;
  const cases: [string, string, Role, string][] = [
    ['M', 'P', 'none', 'ok'], // moderators kick participants and visitors
    ['M', 'V', 'participant', 'ok'], // and grant voice
    ['M', 'A', 'visitor', 'not-allowed'], // not against a higher affiliation
    ['M', 'P', 'moderator', 'not-allowed'], // moderator status is for admins and owners to give
    ['A', 'P', 'moderator', 'ok'],
    ['A', 'M', 'participant', 'ok'],
    ['A', 'A2', 'participant', 'not-allowed'], // admins keep moderator status against equals
    ['O', 'A', 'participant', 'ok'],
    ['A', 'O', 'none', 'not-allowed'],
    ['P', 'V', 'participant', 'forbidden'], // only moderators
    ['V', 'P', 'none', 'forbidden'],
  ];
  for (const [actor, nick, role, expected] of cases) {
    test(`${actor} giving ${nick} role ${role} → ${expected}`, () => {
      const actorJid = `${target(actor).bareJid}/r`;
      assert.equal(outcome(() => checkRoleChange(r, actorJid, target(nick), role)), expected);
    });
  }
});

describe('muc: default roles', () => {
  test('by affiliation and room type (§5.1.2)', () => {
    const r = room({});
    assert.equal(r.defaultRole('owner'), 'moderator');
    assert.equal(r.defaultRole('admin'), 'moderator');
    assert.equal(r.defaultRole('member'), 'participant');
    assert.equal(r.defaultRole('none'), 'participant');
    assert.equal(r.defaultRole('outcast'), 'none');
    r.config = { ...r.config, moderated: true };
    assert.equal(r.defaultRole('none'), 'visitor');
    assert.equal(r.defaultRole('member'), 'participant');
    r.config = { ...r.config, membersOnly: true };
    assert.equal(r.defaultRole('none'), 'none');
  });

  test('a domain ban covers its users', () => {
    const r = room({ 'evil.example': 'outcast' });
    assert.equal(r.affiliationOf('mallory@evil.example'), 'outcast');
    assert.equal(r.affiliationOf('alice@good.example'), 'none');
  });
});

describe('muc: server administrators and deleted accounts', () => {
  const withAdmins = (admins: string[]) => {
    const r = new Room(parseJid('room@conference.localhost'), defaultRoomConfig(mucConfigSchema.parse({})), { deliver: () => true, isServerAdmin: (bare) => admins.includes(bare) });
    r.affiliations.set('o@x', { affiliation: 'owner' });
    r.affiliations.set('boss.example', { affiliation: 'outcast' });
    return r;
  };

  test('a server administrator is an owner of every room, a domain ban notwithstanding; others are unaffected', () => {
    const r = withAdmins(['root@boss.example']);
    assert.equal(r.affiliationOf('root@boss.example'), 'owner');
    assert.equal(r.affiliationOf('other@boss.example'), 'outcast');
    assert.deepEqual(r.withAffiliation('owner').map(([jid]) => jid), ['o@x'], 'the stored lists are unchanged');
  });

  test('making a server administrator anything but owner → not-acceptable (Prosody); owner is fine', () => {
    const r = withAdmins(['root@boss.example']);
    assert.equal(outcome(() => checkAffiliationChange(r, 'o@x', 'root@boss.example', 'member')), 'not-acceptable');
    assert.equal(outcome(() => checkAffiliationChange(r, 'o@x', 'root@boss.example', 'outcast')), 'not-acceptable');
    assert.equal(outcome(() => checkAffiliationChange(r, 'o@x', 'root@boss.example', 'owner')), 'ok');
  });

  test('forgetAccount drops the affiliation (true) and takes the account out of the room; a stranger changes nothing (false)', () => {
    const r = room({ 'o@x': 'owner', 'm@x': 'member' }, [['Mem', 'm@x', 'participant'], ['Own', 'o@x', 'moderator']]);
    assert.equal(forgetAccount(r, 'm@x'), true);
    assert.equal(r.affiliationOf('m@x'), 'none');
    assert.equal(r.occupants.has('Mem'), false);
    assert.equal(r.occupantByReal('m@x/r'), undefined);
    assert.equal(forgetAccount(r, 'nobody@x'), false);
    assert.deepEqual([...r.occupants.keys()], ['Own']);
  });
});
