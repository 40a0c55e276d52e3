/**
 * Batches per Redis Cluster master. On one Redis the service sends the calls waiting at one moment
 * as one Lua call (TurnBatcher: the redirect's clicks, the ledger steps, the click lookups); on a
 * Cluster their keys are in different slots, so the ioredis Cluster client sent one command each,
 * with its per-command work (slot, node, promise, socket write) and Redis' per-command work (a read,
 * a script run, a reply each). Here the items whose key one master serves go to that master as one
 * call on its own connection: a script with Redis 7's `allow-cross-slot-keys` flag that takes the
 * keys as arguments (declared keys must share one slot; the keys a flagged script uses need only be
 * served by the node it runs on).
 *
 * What the caller gets back, and what it must handle (NodeBatchOptions): each item's own reply, or
 * the call's error. An item whose key the master no longer serves (a slot map older than a resharding
 * or a failover) gets an error of its own that `notLocal()` recognises; the caller sends it again the
 * ordinary way (through the Cluster client, which follows MOVED). A call that fails as a whole (lost
 * connection, the node a replica now, a Redis that refuses the script flag: `flagRefused()`) hands
 * its items to `fail`, which does the same for each of them. So every caller's step must be safe to
 * run twice (the ledger steps and the lookups are: idempotent, or reads).
 */
import { createHash } from 'node:crypto';
import { Command, type Cluster, type Redis } from 'ioredis';
import { TurnBatcher } from '../lib/turn-batcher.js';
import { pcallEachLua } from './lua-batch.js';
import { keySlot, masterByKey } from './slot.js';

export interface NodeBatchOptions<T, R> {
  maxPerCall: number;
  maxInFlight: number;
  /** One call for the batch on `node` (the master's own connection). */
  send: (node: Redis, batch: T[]) => Promise<R>;
  deliver: (batch: T[], reply: R) => void;
  /** The call failed as a whole: every item of it is the caller's to send again the ordinary way. */
  fail: (batch: T[], err: unknown) => void;
}

/** An item's error that says its key is not (or no longer) on the master it was sent to. */
export function notLocal(err: unknown): boolean {
  return err instanceof Error && /attempted to access a non local key|attempted to access a slot not served|cluster is down/.test(err.message);
}

/** A call's error that says the server does not take the script flag (a Redis before 7.0). */
export function flagRefused(err: unknown): boolean {
  return err instanceof Error && /^ERR .*(shebang|flag|compiling)/i.test(err.message);
}

/** A Lua script for evalOnNode: its text and its SHA1 (computed once, when the module loads). */
export interface NodeScript {
  readonly lua: string;
  readonly sha: string;
}

export function nodeScript(lua: string): NodeScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * The loop of a per-master batch script (a script sent with evalOnNode and no declared keys): ARGV
 * holds `stride` arguments per item, item after item; the Lua function `fn`, defined by the script
 * before this loop, is called under pcall with the item's offset `a` (its arguments are
 * ARGV[a + 1] .. ARGV[a + stride]). The reply is one entry per item, in order: `fn`'s reply, or the
 * error it raised as an error of its own (a key this node does not serve: notLocal), so one item
 * fails alone.
 */
export function nodeBatchLua(fn: string, stride: number): string {
  return pcallEachLua(`#ARGV / ${stride}`, `${fn}, ${stride} * (i - 1)`);
}

/**
 * EVALSHA with its wire form (RESP) built in one pass, joined flat: through ioredis' own command the
 * argument array is copied three times (rest parameters, `[sha, ...args]`, `flat()`) and the text
 * built from ~5 concatenated pieces per argument, which its socket write then flattens; that was a
 * visible part of a click's CPU (6 arguments per click). The reply is handled by ioredis as for any
 * command (utf8 strings).
 */
class EvalshaCommand extends Command {
  private readonly wire: string;
  constructor(sha: string, numKeys: number, args: readonly (string | number)[]) {
    super('evalsha', [], { replyEncoding: 'utf8' });
    const parts = new Array<string>(args.length + 1);
    parts[0] = `*${args.length + 3}\r\n$7\r\nevalsha\r\n$40\r\n${sha}\r\n$${String(numKeys).length}\r\n${numKeys}\r\n`;
    for (let i = 0; i < args.length; i++) {
      const v = args[i]!;
      const a = typeof v === 'string' ? v : String(v);
      parts[i + 1] = `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    }
    this.wire = parts.join('');
  }

  override toWritable(): string {
    return this.wire;
  }
}

/**
 * Runs `script` on `node` (a Cluster master's own connection, or the one Redis): one EVALSHA, its
 * first `numKeys` arguments the declared keys. A NOSCRIPT reply (the node restarted, failed over to a
 * replica that never ran the script, or its scripts were flushed) is answered by one EVAL with the
 * same arguments, which also puts the script back in that node's cache: the next call is one EVALSHA
 * again. Any other error is the caller's.
 *
 * `behind`, when given, sends a command on the node's connection right behind the EVALSHA (no round
 * trip in between; the click batch's WAIT) and the reply is given once that command has answered
 * too; its failure is the reply's. After an EVAL retry it is sent again once the EVAL has answered
 * (the first one did not cover the EVAL's writes). It may return undefined: nothing sent.
 */
export function evalOnNode<R>(
  node: Redis,
  script: NodeScript,
  numKeys: number,
  args: readonly (string | number)[],
  behind?: (node: Redis) => Promise<unknown> | undefined,
): Promise<R> {
  const cmd = new EvalshaCommand(script.sha, numKeys, args);
  void node.sendCommand(cmd); // its outcome is cmd.promise
  const after = behind?.(node);
  after?.catch(() => undefined); // (its outcome is awaited below, unless the script failed)
  return (cmd.promise as Promise<R>).then(
    after === undefined ? undefined : (reply) => after.then(() => reply),
    (err: unknown) => {
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) return Promise.reject(err);
      const retried = node.call('eval', script.lua, numKeys, ...args) as Promise<R>;
      return behind === undefined
        ? retried
        : retried.then((reply) => {
            const again = behind(node);
            return again === undefined ? reply : again.then(() => reply);
          });
    },
  );
}

export class NodeBatches<T, R> {
  private readonly batchers = new Map<string, { node: Redis; batcher: TurnBatcher<T, R> }>();
  /** Off for good once a master refused the script flag: every item then goes the ordinary way. */
  private on = true;

  constructor(
    private readonly cluster: Cluster,
    private readonly opts: NodeBatchOptions<T, R>,
  ) {}

  /**
   * Adds `item` to the batch of the master that serves `key` (by the client's slot map) and returns
   * true; false, with nothing done, when batching is off or the slot map names no such master.
   */
  add(key: string, item: T): boolean {
    if (!this.on) return false;
    const nodeKey = this.cluster.slots[keySlot(key)]?.[0];
    if (nodeKey === undefined) return false;
    let known = this.batchers.get(nodeKey);
    if (known === undefined || known.node.status === 'end') {
      const node = masterByKey(this.cluster, nodeKey);
      if (node === undefined) return false;
      const entry = {
        node,
        batcher: new TurnBatcher<T, R>({
          maxPerCall: this.opts.maxPerCall,
          maxInFlight: this.opts.maxInFlight,
          send: (batch) => this.opts.send(node, batch),
          deliver: this.opts.deliver,
          fail: (batch, err) => {
            if (flagRefused(err)) this.on = false;
            if (this.batchers.get(nodeKey) === entry) this.batchers.delete(nodeKey);
            this.opts.fail(batch, err);
          },
        }),
      };
      known = entry;
      this.batchers.set(nodeKey, entry);
    }
    known.batcher.add(item);
    return true;
  }
}
