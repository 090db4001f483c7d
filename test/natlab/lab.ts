import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

/*
 * The NAT lab: network namespaces this test creates itself, addressed only inside
 * 198.18.0.0/15, with real kernel NAT (iptables MASQUERADE) on the routers. Torn down at the
 * end, whether the tests passed or not.
 *
 *   internet  198.18.0.0/24: the public peer at 198.18.0.1
 *   router    WAN 198.18.0.11, LAN 198.19.1.1, MASQUERADE out of WAN (the home's NAT)
 *   home      198.19.1.2, default route via the router; the internet has no route back to it
 */
export const IS_ROOT = process.getuid?.() === 0;
const HAS_TOOLS = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('iptables', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
export const SKIP_WITHOUT_LAB = IS_ROOT && HAS_TOOLS ? false : 'the NAT lab needs root, iproute2 and iptables (.ci/run installs them)';

export const PUBLIC_PEER = '198.18.0.1';
export const ROUTER_WAN = '198.18.0.11';
export const HOME_HOST = '198.19.1.2';

export class NatLab {
  readonly internet: string;
  readonly router: string;
  readonly home: string;
  private readonly processes: ChildProcess[] = [];

  constructor(tag = `${process.pid}`) {
    this.internet = `p2pl-${tag}-inet`;
    this.router = `p2pl-${tag}-r1`;
    this.home = `p2pl-${tag}-h1`;
  }

  build(): void {
    for (const ns of [this.internet, this.router, this.home]) {
      run('ip', ['netns', 'add', ns]);
      this.in(ns, 'ip', ['link', 'set', 'lo', 'up']);
    }
    run('ip', ['link', 'add', 'i-r1', 'netns', this.internet, 'type', 'veth', 'peer', 'name', 'r1-wan', 'netns', this.router]);
    run('ip', ['link', 'add', 'r1-lan', 'netns', this.router, 'type', 'veth', 'peer', 'name', 'h1-eth', 'netns', this.home]);
    this.address(this.internet, 'i-r1', `${PUBLIC_PEER}/24`);
    this.address(this.router, 'r1-wan', `${ROUTER_WAN}/24`);
    this.address(this.router, 'r1-lan', '198.19.1.1/24');
    this.address(this.home, 'h1-eth', `${HOME_HOST}/24`);
    this.in(this.home, 'ip', ['route', 'add', 'default', 'via', '198.19.1.1']);
    this.in(this.router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    this.in(this.router, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'r1-wan', '-j', 'MASQUERADE']);
  }

  /** Runs a command inside a namespace to completion and returns its output. */
  in(ns: string, command: string, args: string[]): string {
    return run('ip', ['netns', 'exec', ns, command, ...args]);
  }

  /** Starts a long-running process inside a namespace; it is killed at teardown. */
  spawn(ns: string, command: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.push(child);
    return child;
  }

  async teardown(): Promise<void> {
    for (const child of this.processes) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(this.processes.map((c) => (c.exitCode !== null ? undefined : new Promise((resolve) => c.once('exit', resolve)))));
    for (const ns of [this.home, this.router, this.internet]) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }

  private address(ns: string, device: string, cidr: string): void {
    this.in(ns, 'ip', ['addr', 'add', cidr, 'dev', device]);
    this.in(ns, 'ip', ['link', 'set', device, 'up']);
  }
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
}
