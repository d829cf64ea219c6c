import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../../test/support/jobs.ts';
import type { WebhookEndpoint } from './batch.ts';
import type { OutboundEvent } from './events.ts';
import { deliver, newWebhookSecret, retryDelayMs, signature } from './webhooks-out.ts';

const receivers: Receiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

async function endpoint(): Promise<{ receiver: Receiver; endpoint: WebhookEndpoint }> {
  const receiver = await startReceiver();
  receivers.push(receiver);
  return { receiver, endpoint: { url: receiver.url, secret: newWebhookSecret(), events: ['batch.completed'] } };
}

const event: OutboundEvent = {
  id: 'msg_2b4ndmazr5u3jhxqvpesdk7c',
  type: 'batch.completed',
  payload: JSON.stringify({ type: 'batch.completed', timestamp: '2026-01-01T00:00:00.000Z', data: { batch_id: 'batch_x', status: 'completed' } }),
};

describe('outbound webhook signatures', () => {
  it('makes whsec_ secrets of 24 random bytes', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(24);
    expect(newWebhookSecret()).not.toBe(secret);
  });

  it('signs as the Standard Webhooks reference implementation does', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(signature(secret, event.id, 1_767_225_600, event.payload)).toBe(new Webhook(secret).sign(event.id, new Date(1_767_225_600_000), event.payload));
  });
});

describe('a delivery', () => {
  it('sends the event with webhook-id, webhook-timestamp and a signature the standardwebhooks package verifies', async () => {
    const { receiver, endpoint: target } = await endpoint();
    expect(await deliver(target, event, { allowPrivate: true, timeoutMs: 2_000 })).toEqual({ kind: 'delivered', status: 204 });
    const [got] = receiver.deliveries;
    expect(got?.id).toBe(event.id);
    expect(got?.body).toBe(event.payload);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(got?.timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(new Webhook(target.secret).verify(got!.body, got!.headers)).toEqual(JSON.parse(event.payload));
    expect(() => new Webhook(newWebhookSecret()).verify(got!.body, got!.headers)).toThrow(/No matching signature/);
  });

  it('reads 410 as gone, other answers as failed, and a private target as refused with no connection', async () => {
    const { receiver, endpoint: target } = await endpoint();
    receiver.respond = (_, n) => [410, 500, 301][n] ?? 200;
    expect(await deliver(target, event, { allowPrivate: true, timeoutMs: 2_000 })).toEqual({ kind: 'gone' });
    expect(await deliver(target, event, { allowPrivate: true, timeoutMs: 2_000 })).toEqual({ kind: 'failed', reason: 'answered 500' });
    expect(await deliver(target, event, { allowPrivate: true, timeoutMs: 2_000 })).toEqual({ kind: 'failed', reason: 'answered 301 (redirects are not followed)' });
    const connections = receiver.connections;
    expect(await deliver(target, event, { allowPrivate: false, timeoutMs: 2_000 })).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/private or loopback/) });
    expect(receiver.connections).toBe(connections);
  });

  it('fails when the receiver is down', async () => {
    const { receiver, endpoint: target } = await endpoint();
    await receiver.down();
    expect(await deliver(target, event, { allowPrivate: true, timeoutMs: 2_000 })).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/cannot reach .*ECONNREFUSED/) });
  });
});

describe('the retry schedule', () => {
  it('waits each entry of the schedule, ±20 % at random, then gives up', () => {
    const schedule = [5_000, 300_000, 1_800_000];
    expect(retryDelayMs(schedule, 1, () => 0.5)).toBe(5_000);
    expect(retryDelayMs(schedule, 1, () => 0)).toBe(4_000);
    expect(retryDelayMs(schedule, 2, () => 1)).toBe(360_000);
    expect(retryDelayMs(schedule, 3, () => 0.5)).toBe(1_800_000);
    expect(retryDelayMs(schedule, 4)).toBeUndefined();
  });
});
