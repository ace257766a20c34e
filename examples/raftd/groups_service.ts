/**
 * raftd's {@link RaftdService} under `-groups N`: key operations go to the
 * key's group ({@link Shards.route}) — served here when this node leads it,
 * else answered with {@link NotLeaderError} naming that group's leader, so
 * the HTTP layer forwards the request there exactly as for one group. Reads
 * are linearizable per group (the group's ReadIndex, then this node's copy).
 * Everything else (membership, transfer of the control group) is the control
 * group's {@link RaftdNodeService}; `/status` adds every group.
 *
 * @module
 */

import { HttpError, type JoinAnswer, type RaftdService, type StatusView } from "./http.ts";
import { encodeCommand, type KvCommand, type KvResult } from "./kv.ts";
import type { RaftGauges } from "./metrics.ts";
import type { Shards } from "./groups.ts";
import { type RaftdNodeService, toHttpError } from "./service.ts";

/** The service over the control group and the groups of keys. */
export class ShardedService implements RaftdService {
  /**
   * @param control the control group's service
   * @param shards the groups of keys
   * @param self this node's id
   * @param addressOf member id → HTTP address (where a group's leader is forwarded to)
   * @param joinTimeoutMs how long a join waits for every group to take the new voter
   */
  constructor(
    private readonly control: RaftdNodeService,
    private readonly shards: Shards,
    private readonly self: string,
    private readonly addressOf: (id: string) => string | undefined,
    private readonly joinTimeoutMs: number,
  ) {}

  async #call<T>(f: () => Promise<T>, write: boolean): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toHttpError(e, write, this.addressOf, this.self);
    }
  }

  async #propose(key: string, cmd: KvCommand): Promise<KvResult> {
    const { handle } = this.shards.route(key);
    const result = await this.#call(() => handle.propose(encodeCommand(cmd)), true) as KvResult;
    if (result.type === "invalid") throw new HttpError(500, `state machine refused the command: ${result.reason}`);
    return result;
  }

  /** {@inheritDoc RaftdService.put} */
  async put(key: string, value: Uint8Array): Promise<void> {
    await this.#propose(key, { op: "put", key, value });
  }

  /** {@inheritDoc RaftdService.cas} */
  cas(key: string, prev: Uint8Array, value: Uint8Array): Promise<KvResult> {
    return this.#propose(key, { op: "cas", key, prev, value });
  }

  /** {@inheritDoc RaftdService.delete} */
  async delete(key: string): Promise<boolean> {
    const r = await this.#propose(key, { op: "delete", key });
    return r.type === "deleted" && r.existed;
  }

  /** {@inheritDoc RaftdService.get} */
  async get(key: string, stale: boolean): Promise<Uint8Array | undefined> {
    const { handle, kv } = this.shards.route(key);
    if (!stale) await this.#call(() => handle.readIndex(), false);
    return kv.get(key);
  }

  /** {@inheritDoc RaftdService.status} */
  status(): StatusView {
    return {
      ...this.control.status(),
      groups: this.shards.views((m) => this.control.memberViews(m), this.addressOf),
    };
  }

  /** {@inheritDoc RaftdService.gauges} */
  gauges(): RaftGauges {
    return { ...this.control.gauges(), keys: this.shards.keys };
  }

  /**
   * A join of the control group (see {@link RaftdNodeService.join}), then a
   * wait until every group has the new node as a voter (each group's leader
   * adds it): answered once the node holds a vote everywhere.
   */
  async join(id: string, address: string, peer?: string, replace?: boolean): Promise<JoinAnswer> {
    const answer = await this.control.join(id, address, peer, replace);
    const deadline = Date.now() + this.joinTimeoutMs;
    while (!this.shards.allHaveVoter(id)) {
      if (Date.now() > deadline) {
        throw new HttpError(503, `node ${id} joined, but not every group has taken it yet; retry the join`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return answer;
  }

  /** {@inheritDoc RaftdService.removeMember} (the groups' leaders then remove it from every group) */
  removeMember(id: string): Promise<void> {
    return this.control.removeMember(id);
  }

  /** {@inheritDoc RaftdService.transfer} (the control group's leadership; the groups' is balanced) */
  transfer(to: string): Promise<void> {
    return this.control.transfer(to);
  }
}
