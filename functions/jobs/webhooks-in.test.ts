import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { HookSource } from '../core/config.ts';
import { HookRejectedError, s3EventItems, verifyHook } from './webhooks-in.ts';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const sources: Record<string, HookSource> = { cms: { secret: SECRET } };
const body = JSON.stringify({ items: [{ image: 'https://example.com/a.png', instruction: 'make the red circle blue' }] });

function signed(payload: string, options: { id?: string; at?: number; secret?: string } = {}) {
  const at = options.at ?? Date.now();
  const id = options.id ?? 'msg_1';
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at / 1000)), 'webhook-signature': new Webhook(options.secret ?? SECRET).sign(id, new Date(at), payload) };
}

describe('inbound webhook verification', () => {
  it('accepts a body signed with the source\'s secret, whatever the header case', () => {
    const headers = Object.fromEntries(Object.entries(signed(body)).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyHook(sources, 'cms', body, headers)).toEqual({ webhookId: 'msg_1', body });
  });

  it('refuses a forged signature, a changed body, a stale or future timestamp, missing headers and an unknown source', () => {
    const refuse = (source: string, payload: string, headers: Record<string, string>) => expect(() => verifyHook(sources, source, payload, headers)).toThrow(HookRejectedError);
    refuse('cms', body, signed(body, { secret: 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    refuse('cms', body.replace('blue', 'green'), signed(body));
    refuse('cms', body, signed(body, { at: Date.now() - 6 * 60_000 }));
    refuse('cms', body, signed(body, { at: Date.now() + 6 * 60_000 }));
    refuse('cms', body, { 'webhook-id': 'msg_1' });
    refuse('shop', body, signed(body));
    refuse('toString', body, signed(body));
    expect(() => verifyHook(sources, 'cms', body, signed(body, { at: Date.now() - 6 * 60_000 }))).toThrow(/timestamp too old/);
  });
});

describe('items from an S3 event notification', () => {
  const record = (key: string, eventName = 'ObjectCreated:Put', bucket = 'in-bucket') => ({ eventName, s3: { bucket: { name: bucket }, object: { key } } });
  const rules = [
    { prefix: 'recolor/', suffix: '.png', instruction: 'make the red circle blue' },
    { prefix: '', suffix: '.png', instruction: 'remove the green triangle' },
  ];

  it('makes an item of each new object under the input prefix, with the first matching rule\'s instruction', () => {
    const { items, ignored } = s3EventItems(
      [
        record('inbox/recolor/my+cat%21.png'),
        record('inbox/other/b.png'),
        record('inbox/recolor/c.jpg'),
        record('elsewhere/d.png'),
        record('inbox/e.png', 'ObjectRemoved:Delete'),
        record('inbox/f.png', 'ObjectCreated:Put', 'another-bucket'),
      ],
      { scheme: 's3', bucket: 'in-bucket', key: 'inbox/' },
      rules,
    );
    expect(items).toEqual([
      { image: { key: 'recolor/my cat!.png' }, instruction: 'make the red circle blue' },
      { image: { key: 'other/b.png' }, instruction: 'remove the green triangle' },
    ]);
    expect(ignored).toBe(4);
  });

  it('takes keys as they are for a local input folder', () => {
    expect(s3EventItems([record('recolor/a.png')], { scheme: 'file', path: '/srv/inputs' }, rules).items).toEqual([
      { image: { key: 'recolor/a.png' }, instruction: 'make the red circle blue' },
    ]);
  });
});
