import { reapOnExit } from '../helpers/reaper.js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/*
 * The NAT lab: network namespaces this test creates itself, addressed only inside
 * 198.18.0.0/15, with real kernel NAT (iptables) on the routers. Torn down at the end, whether
 * the tests passed or not.
 *
 *   internet   198.18.0.0/24 on a bridge: public peers at 198.18.0.1 and 198.18.0.2
 *   router i   WAN 198.18.0.(10+i), LAN 198.19.i.1; its home host at 198.19.i.2
 *   carrier    a carrier-grade NAT at 198.18.0.50 whose subscribers (home routers' WANs) sit on
 *              198.19.200.0/24 behind it
 *
 * The internet has no route to any LAN: the only way in is what the NATs let through.
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
export const SECOND_PUBLIC_PEER = '198.18.0.2';
const CARRIER_WAN = '198.18.0.50';
/** The overlay port every lab peer binds; the cone routers forward it. */
export const LAB_PORT = 6084;
/** How many output chunks of each process are kept for failure messages (LAB_TAIL for more when looking into one). */
const LAB_TAIL = Number(process.env.LAB_TAIL ?? 50);
/** miniupnpd's UPnP HTTP port behind the permanent-lease firmware, and the firmware's own. */
const MINIUPNPD_HTTP_PORT = 5000;
const FIRMWARE_HTTP_PORT = 5001;

/**
 * Router behaviours, in RFC 4787 terms:
 * - `full-cone`: endpoint-independent mapping and filtering (a fixed port forwarded back), with hairpinning
 * - `address-restricted`: endpoint-independent mapping, address-dependent filtering
 * - `port-restricted`: endpoint-independent mapping, address-and-port-dependent filtering
 *   (Linux conntrack's own behaviour: plain MASQUERADE), no hairpinning
 * - `symmetric`: endpoint-dependent mapping (MASQUERADE --random-fully)
 * - `carrier`: a port-restricted home router behind a carrier-grade NAT (two NATs in a row)
 * - `upnp`: a port-restricted router running miniupnpd (PCP, NAT-PMP and UPnP IGD), which
 *   checks with STUN against the public peer that its WAN side is reachable before it forwards
 *   (198.18.0.0/15 is reserved, so miniupnpd would not forward otherwise)
 */
export type RouterKind = 'full-cone' | 'address-restricted' | 'port-restricted' | 'symmetric' | 'carrier' | 'upnp' | 'openwrt';

/**
 * The OpenWrt package's defaults (targets/openwrt/p2psip.uci): the ports its procd script opens on
 * the router's WAN zone, and gives the peer as flags.
 */
export const OPENWRT_DEFAULTS = (() => {
  const uci = readFileSync(path.resolve('targets/openwrt/p2psip.uci'), 'utf8');
  const option = (name: string) => new RegExp(`option ${name} '([^']*)'`).exec(uci)?.[1] ?? '';
  return { overlayPort: Number(option('overlay_port')), mediaPorts: option('media_ports'), relayPorts: option('relay_ports'), sipDirect: option('sip_direct') === '1' ? 'on' : 'off' };
})();

export const HAS_MINIUPNPD = (() => {
  try {
    execFileSync('miniupnpd', ['--version'], { stdio: 'ignore' });
    execFileSync('iptables-legacy', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export interface Home {
  readonly name: string;
  readonly kind: RouterKind;
  readonly router: string;
  readonly ns: string;
  readonly host: string;
  /** The router's WAN address (inside the carrier's network for `carrier`). */
  readonly wan: string;
  /** Where the home peer runs: the host behind the router, or (`openwrt`) the router itself, on its WAN address. */
  readonly peerNs: string;
  readonly peerHost: string;
  /** Flags the home peer needs here (the OpenWrt package's port ranges). */
  readonly peerFlags: readonly string[];
}

export class NatLab {
  readonly internet: string;
  readonly homes: Home[] = [];
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly outputs = new Map<ChildProcess, string[]>();
  private readonly miniupnpd = new Map<string, ChildProcess>();
  private readonly miniupnpdConfigs = new Map<string, string>();
  private readonly firmware = new Map<string, ChildProcess>();
  private readonly files: string[] = [];
  private carrier: string | undefined;
  private built = false;

  constructor(private readonly tag = `${process.pid}`) {
    this.internet = `p2pl-${tag}-inet`;
  }

  /** The internet: a bridge with the two public peers' addresses. */
  build(): void {
    if (this.built) return;
    this.built = true;
    this.namespace(this.internet);
    this.bridge(this.internet, 'br0', '02:00:c6:12:00:01');
    this.in(this.internet, 'ip', ['link', 'set', 'br0', 'up']);
    this.in(this.internet, 'ip', ['addr', 'add', `${PUBLIC_PEER}/24`, 'dev', 'br0']);
    this.in(this.internet, 'ip', ['addr', 'add', `${SECOND_PUBLIC_PEER}/24`, 'dev', 'br0']);
  }

  /** A home of the given kind: a router namespace with its NAT rules and a host behind it. */
  addHome(kind: RouterKind, options: { udpTimeoutSeconds?: number; permanentLeasesOnly?: boolean } = {}): Home {
    this.build();
    const i = this.homes.length + 1;
    const name = `h${i}`;
    const router = this.namespace(`p2pl-${this.tag}-r${i}`);
    const ns = this.namespace(`p2pl-${this.tag}-${name}`);
    let wan: string;
    if (kind === 'carrier') {
      const carrier = this.carrierNamespace();
      wan = `198.19.200.${10 + i}`;
      this.cable(carrier, `c-${name}`, 'cbr', router, 'wan');
      this.address(router, 'wan', `${wan}/24`);
      this.in(router, 'ip', ['route', 'add', 'default', 'via', '198.19.200.1']);
    } else {
      wan = `198.18.0.${10 + i}`;
      this.cable(this.internet, `i-${name}`, 'br0', router, 'wan');
      this.address(router, 'wan', `${wan}/24`);
    }
    run('ip', ['link', 'add', 'lan', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    const host = `198.19.${i}.2`;
    this.address(router, 'lan', `198.19.${i}.1/24`);
    this.address(ns, 'eth0', `${host}/24`);
    this.in(ns, 'ip', ['route', 'add', 'default', 'via', `198.19.${i}.1`]);
    this.in(router, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    if (options.udpTimeoutSeconds !== undefined) {
      // How long this router keeps an idle UDP binding, answered once or many times.
      this.in(router, 'sysctl', ['-q', '-w', `net.netfilter.nf_conntrack_udp_timeout=${options.udpTimeoutSeconds}`]);
      this.in(router, 'sysctl', ['-q', '-w', `net.netfilter.nf_conntrack_udp_timeout_stream=${options.udpTimeoutSeconds}`]);
    }
    if (kind === 'upnp') this.startMiniupnpd(router, i, options.permanentLeasesOnly ?? false);
    else for (const rule of [...natRules(kind, wan, host), FIREWALL]) this.in(router, 'iptables', rule);
    // OpenWrt: the peer on the router, whose firewall lets in from the WAN only what the package opens.
    if (kind === 'openwrt') {
      const open = [['tcp', `${OPENWRT_DEFAULTS.overlayPort}`], ['udp', `${OPENWRT_DEFAULTS.overlayPort}`], ['udp', OPENWRT_DEFAULTS.mediaPorts], ['udp', OPENWRT_DEFAULTS.relayPorts]];
      for (const [protocol, ports] of open) this.in(router, 'iptables', ['-I', 'INPUT', '-i', 'wan', '-p', protocol, '--dport', ports.replace('-', ':'), '-j', 'ACCEPT']);
    }
    const onRouter = kind === 'openwrt';
    const peerFlags = onRouter ? ['--media-ports', OPENWRT_DEFAULTS.mediaPorts, '--relay-ports', OPENWRT_DEFAULTS.relayPorts, '--sip-direct', OPENWRT_DEFAULTS.sipDirect] : [];
    const home = { name, kind, router, ns, host, wan, peerNs: onRouter ? router : ns, peerHost: onRouter ? wan : host, peerFlags };
    this.homes.push(home);
    return home;
  }

  /**
   * A phone of its own on the home's LAN, apart from the host that runs the home peer (as a
   * family's phones are): its own namespace, cabled to the router on a second LAN port, its own
   * subnet 198.19.(50+i).0/24. The router forwards between its LAN ports without NAT.
   */
  addPhone(home: Home): { ns: string; host: string } {
    const i = this.homes.indexOf(home) + 1;
    const ns = this.namespace(`p2pl-${this.tag}-${home.name}p`);
    run('ip', ['link', 'add', 'lanp', 'netns', home.router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    const host = `198.19.${50 + i}.2`;
    this.address(home.router, 'lanp', `198.19.${50 + i}.1/24`);
    this.address(ns, 'eth0', `${host}/24`);
    this.in(ns, 'ip', ['route', 'add', 'default', 'via', `198.19.${50 + i}.1`]);
    return { ns, host };
  }

  /** Runs a command inside a namespace to completion and returns its output. */
  in(ns: string, command: string, args: string[]): string {
    return run('ip', ['netns', 'exec', ns, command, ...args]);
  }

  /** Starts a long-running process inside a namespace; it is killed at teardown. */
  spawn(ns: string, command: string, args: string[], options: { stdin?: boolean } = {}): ChildProcess {
    const child = reapOnExit(spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] }));
    this.processes.push(child);
    // Keep the pipes drained (a full pipe would stall the process) and the tail for failures.
    const tail: string[] = [];
    const keep = (chunk: Buffer): void => {
      tail.push(chunk.toString());
      if (tail.length > LAB_TAIL) tail.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.outputs.set(child, tail);
    return child;
  }

  /** The last lines a spawned process wrote, for failure messages. */
  output(child: ChildProcess): string {
    return (this.outputs.get(child) ?? []).join('');
  }

  async teardown(): Promise<void> {
    // A process a test killed by a signal has no exit code, and its 'exit' went by already: waiting for it would hang.
    const running = this.processes.filter((child) => child.exitCode === null && child.signalCode === null);
    for (const child of running) child.kill('SIGKILL');
    await Promise.all(running.map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(undefined) : c.once('exit', resolve)))));
    for (const file of this.files) rmSync(file, { force: true });
    for (const ns of this.namespaces.reverse()) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }

  /**
   * miniupnpd 2.3 programs iptables through libiptc (the legacy tables), so this router keeps all
   * its rules there: MASQUERADE, and the chains miniupnpd adds its forwards to.
   */
  private startMiniupnpd(router: string, i: number, permanentLeasesOnly: boolean): void {
    const legacy = (args: string[]) => this.in(router, 'iptables-legacy', args);
    legacy(['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE']);
    for (const table of ['nat', 'filter', 'mangle']) legacy(['-t', table, '-N', 'MINIUPNPD']);
    legacy(['-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING']);
    legacy(['-t', 'nat', '-I', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD']);
    legacy(['-t', 'nat', '-I', 'POSTROUTING', '-o', 'wan', '-j', 'MINIUPNPD-POSTROUTING']);
    legacy(['-t', 'mangle', '-I', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD']);
    legacy(['-t', 'filter', '-I', 'FORWARD', '-i', 'wan', '!', '-o', 'wan', '-j', 'MINIUPNPD']);
    const config = path.join(tmpdir(), `p2pl-${this.tag}-miniupnpd-${i}.conf`);
    writeFileSync(
      config,
      [
        'ext_ifname=wan',
        'listening_ip=lan',
        // Behind the firmware that grants only permanent leases, UPnP listens on a port it knows.
        `port=${permanentLeasesOnly ? MINIUPNPD_HTTP_PORT : 0}`,
        'enable_natpmp=yes',
        'enable_upnp=yes',
        // (Behind that firmware the SOAP requests come from the router itself, not the LAN host they name.)
        `secure_mode=${permanentLeasesOnly ? 'no' : 'yes'}`,
        'system_uptime=no',
        `ext_perform_stun=yes`,
        `ext_stun_host=${PUBLIC_PEER}`,
        `ext_stun_port=${LAB_PORT}`,
        `lease_file=${config}.leases`,
        'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b',
        `allow 1024-65535 198.19.${i}.0/24 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    this.files.push(config, `${config}.leases`);
    this.miniupnpdConfigs.set(router, config);
    this.miniupnpd.set(router, this.spawn(router, 'miniupnpd', ['-f', config, '-d', '-P', `${config}.pid`]));
    this.files.push(`${config}.pid`);
    if (permanentLeasesOnly) this.startPermanentLeaseFirmware(router, i);
  }

  /**
   * Firmware that grants only permanent UPnP leases (725 for any other), in front of miniupnpd:
   * the LAN's UPnP requests are turned to it, and what it lets through goes on to miniupnpd.
   */
  private startPermanentLeaseFirmware(router: string, i: number): void {
    const lan = `198.19.${i}.1`;
    const firmware = path.resolve('test/natlab/permanent-lease-firmware.mjs');
    this.in(router, 'iptables-legacy', ['-t', 'nat', '-I', 'PREROUTING', '-i', 'lan', '-p', 'tcp', '-d', lan, '--dport', `${MINIUPNPD_HTTP_PORT}`, '-j', 'REDIRECT', '--to-ports', `${FIRMWARE_HTTP_PORT}`]);
    this.firmware.set(router, this.spawn(router, process.execPath, [firmware, lan, `${FIRMWARE_HTTP_PORT}`, lan, `${MINIUPNPD_HTTP_PORT}`]));
  }

  /** What the permanent-lease firmware printed (what it refused and granted). */
  firmwareLog(router: string): string {
    const child = this.firmware.get(router);
    return child ? this.output(child) : '';
  }

  /**
   * The home router reboots: miniupnpd dies with no chance to clean up, and what lived in RAM
   * goes with it (the forwards in its chains, the connection tracking table, its lease file,
   * which OpenWrt keeps on tmpfs); then it starts again, with a fresh epoch.
   */
  async rebootRouter(home: Home): Promise<void> {
    const child = this.miniupnpd.get(home.router);
    const config = this.miniupnpdConfigs.get(home.router);
    if (!child || !config) throw new Error(`${home.name} has no miniupnpd`);
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    for (const [table, chain] of [['nat', 'MINIUPNPD'], ['nat', 'MINIUPNPD-POSTROUTING'], ['filter', 'MINIUPNPD'], ['mangle', 'MINIUPNPD']]) this.in(home.router, 'iptables-legacy', ['-t', table, '-F', chain]);
    this.in(home.router, 'sh', ['-c', 'conntrack -F 2>/dev/null || true']);
    rmSync(`${config}.leases`, { force: true });
    rmSync(`${config}.pid`, { force: true });
    this.miniupnpd.set(home.router, this.spawn(home.router, 'miniupnpd', ['-f', config, '-d', '-P', `${config}.pid`]));
  }

  /** What miniupnpd on this router printed (its log goes to stderr with -d). */
  routerLog(router: string): string {
    const child = this.miniupnpd.get(router);
    return child ? this.output(child) : '';
  }

  /** The router's forwarding rules, as miniupnpd left them (legacy tables). */
  forwards(router: string): string {
    return this.in(router, 'iptables-legacy', ['-t', 'nat', '-S', 'MINIUPNPD']);
  }

  private carrierNamespace(): string {
    if (this.carrier) return this.carrier;
    const carrier = this.namespace(`p2pl-${this.tag}-cgn`);
    this.cable(this.internet, 'i-cgn', 'br0', carrier, 'wan');
    this.address(carrier, 'wan', `${CARRIER_WAN}/24`);
    this.bridge(carrier, 'cbr', '02:00:c6:13:c8:01');
    this.address(carrier, 'cbr', '198.19.200.1/24');
    this.in(carrier, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    // RFC 6888 asks carrier NATs for endpoint-independent mapping; conntrack keeps the port.
    this.in(carrier, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE']);
    this.in(carrier, 'iptables', FIREWALL);
    this.carrier = carrier;
    return carrier;
  }

  private namespace(name: string): string {
    run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.in(name, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
  }

  /**
   * A bridge with a fixed MAC address. Left to itself, Linux gives a bridge the lowest MAC of its
   * ports, so each home cabled in later could change it: routers that had already learnt the
   * public peers' address then sent to a MAC nobody answers until their ARP entry went stale.
   */
  private bridge(ns: string, name: string, mac: string): void {
    this.in(ns, 'ip', ['link', 'add', name, 'address', mac, 'type', 'bridge']);
  }

  /** A veth pair from a bridge in one namespace to a device in another. */
  private cable(fromNs: string, fromDevice: string, bridge: string, toNs: string, toDevice: string): void {
    run('ip', ['link', 'add', fromDevice, 'netns', fromNs, 'type', 'veth', 'peer', 'name', toDevice, 'netns', toNs]);
    this.in(fromNs, 'ip', ['link', 'set', fromDevice, 'master', bridge]);
    this.in(fromNs, 'ip', ['link', 'set', fromDevice, 'up']);
    this.in(fromNs, 'ip', ['link', 'set', bridge, 'up']);
  }

  private address(ns: string, device: string, cidr: string): void {
    this.in(ns, 'ip', ['addr', 'add', cidr, 'dev', device]);
    this.in(ns, 'ip', ['link', 'set', device, 'up']);
  }
}

/**
 * Routers drop what arrives for no mapping, as home firewalls do. Without it the kernel would keep
 * a connection-tracking entry for the stray packet, and that entry would later clash with the
 * mapping the home asks for, making the router pick another port (behaving symmetrically).
 */
const FIREWALL = ['-A', 'INPUT', '-i', 'wan', '-p', 'udp', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'];

/** iptables rules (after `iptables`) that make a router of this kind. */
function natRules(kind: RouterKind, wan: string, host: string): string[][] {
  const masquerade = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE'];
  // The cone kinds map the peer's port to the same WAN port whoever it talks to, and send back
  // what arrives there: from anyone (full cone), or from addresses the home has sent to.
  const fixedMapping = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-s', host, '-p', 'udp', '--sport', `${LAB_PORT}`, '-j', 'SNAT', '--to-source', `${wan}:${LAB_PORT}`];
  const forwardBack = (extra: string[]) => ['-t', 'nat', '-A', 'PREROUTING', '-d', wan, '-p', 'udp', '--dport', `${LAB_PORT}`, ...extra, '-j', 'DNAT', '--to-destination', `${host}:${LAB_PORT}`];
  switch (kind) {
    case 'full-cone':
      // Hairpinning: the home reaching its own WAN address comes back in, from the router.
      return [fixedMapping, forwardBack([]), masquerade, ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'lan', '-s', host, '-d', host, '-j', 'MASQUERADE']];
    case 'address-restricted':
      return [
        ['-A', 'FORWARD', '-i', 'lan', '-o', 'wan', '-m', 'recent', '--name', 'contacted', '--rdest', '--set'],
        fixedMapping,
        forwardBack(['-m', 'recent', '--name', 'contacted', '--rsource', '--rcheck', '--seconds', '300']),
        masquerade,
      ];
    case 'port-restricted':
    case 'carrier':
    case 'upnp':
    case 'openwrt':
      return [masquerade];
    case 'symmetric':
      return [[...masquerade, '--random-fully']];
  }
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
}
