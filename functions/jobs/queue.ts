/**
 * The queue port: at-least-once delivery with a visibility timeout. A received message is
 * leased: invisible to other receivers until it is acked, retried, or its lease runs out (a
 * crashed worker's messages come back by themselves). `attempts` counts its deliveries; a
 * message delivered `maxAttempts` times without an ack is dead-lettered, not delivered again.
 * Implementations: SQLite (embedded, sqlite-queue.ts) and SQS (sqs-queue.ts).
 */

export interface QueueMessage {
  readonly id: string;
  readonly body: string;
  /** Deliveries so far, this one included (1 on a first delivery). */
  readonly attempts: number;
  /** Names this delivery (its lease) to ack, retry or extend. */
  readonly receipt: string;
}

export interface SendOptions {
  /** Invisible for this long first. SQS waits at most 15 minutes; callers wanting longer re-send (see worker.ts). */
  readonly delayMs?: number;
  /**
   * Messages with the same id are sent once: always on SQLite (the id is kept after the ack),
   * not on an SQS standard queue, which has no deduplication. Consumers stay idempotent either way.
   */
  readonly dedupeId?: string;
}

export interface Queue {
  /** The longest delay `send` honours in one go. */
  readonly maxDelayMs: number;
  send(body: string, options?: SendOptions): Promise<void>;
  /** Up to `max` visible messages, leased for the visibility timeout; may return none. */
  receive(max: number): Promise<QueueMessage[]>;
  /** Done: the message is not delivered again. False if the lease had run out (someone else may hold it). */
  ack(receipt: string): Promise<boolean>;
  /** Deliver again after `delayMs` (counts as an attempt when it is received). */
  retry(receipt: string, delayMs: number): Promise<void>;
  /** Keeps the lease `ms` longer from now, for work that outlasts the visibility timeout. */
  extend(receipt: string, ms: number): Promise<void>;
  close(): Promise<void>;
}
