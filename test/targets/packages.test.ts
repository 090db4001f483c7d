import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { removeDir, tempDir } from '../helpers/processes.js';

/*
 * The packages people install: each target builds its package; the .debs pass lintian without
 * errors and install into a Debian root made by debootstrap, putting every file where Debian
 * wants it, with a system user and the service enabled at boot; purging takes them away again.
 * The OpenWrt .ipk has opkg's layout, and its procd script turns UCI options into our flags.
 */
const root = tempDir('p2psip-targets-');
after(() => removeDir(root));
const has = (command: string, args = ['--version']) => spawnSync(command, args, { stdio: 'ignore' }).error === undefined;
const IS_ROOT = process.getuid?.() === 0;

function build(target: string): string {
  const out = execFileSync(process.execPath, ['scripts/build.mjs', '--target', target], { encoding: 'utf8' });
  const file = /^(dist\/\S+\.(deb|ipk)) /m.exec(out)?.[1];
  assert.ok(file, out);
  return path.resolve(file!);
}

const packages: Record<string, string> = {};

test('every target builds its package: two .debs (Debian, Raspberry Pi OS) and an .ipk (OpenWrt)', () => {
  for (const target of ['debian', 'raspberry-pi', 'openwrt']) packages[target] = build(target);
  assert.match(packages.debian, /p2psip_\d+\.\d+\.\d+_all\.deb$/);
  assert.match(packages.openwrt, /p2psip_\d+\.\d+\.\d+_all\.ipk$/);
  // Reproducible: the same commit gives the same bytes.
  const first = readFileSync(packages.debian);
  build('debian');
  assert.deepEqual(readFileSync(packages.debian), first);
});

test('the .debs pass lintian without errors or warnings', { skip: has('lintian') ? false : 'lintian not installed (.ci/run installs it)' }, () => {
  for (const target of ['debian', 'raspberry-pi']) {
    const result = spawnSync('lintian', ['--fail-on', 'error,warning', packages[target]], { encoding: 'utf8' });
    const findings = `${result.stdout}${result.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l));
    assert.deepEqual(findings, [], `${target}: ${result.stdout}`);
    assert.equal(result.status, 0, result.stderr);
  }
});

test('the Debian package installs into a debootstrap root: files in place, a system user, the service enabled at boot; purge removes it', { skip: !IS_ROOT || !has('debootstrap') ? 'needs root and debootstrap (.ci/run installs it)' : false, timeout: 300_000 }, () => {
  const target = path.join(root, 'bookworm');
  const made = spawnSync('debootstrap', ['--variant=minbase', '--include=adduser,init-system-helpers', 'bookworm', target, 'http://deb.debian.org/debian'], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(made.status, 0, `debootstrap: ${made.stderr.slice(-2000)}`);
  copyFileSync(packages.debian, path.join(target, 'tmp/p2psip.deb'));
  // Node itself is not in a minimal root; the package's own scripts and files are what is checked.
  const installed = spawnSync('chroot', [target, 'dpkg', '-i', '--force-depends', '/tmp/p2psip.deb'], { encoding: 'utf8' });
  assert.equal(installed.status, 0, `${installed.stdout}${installed.stderr}`);
  const inRoot = (p: string) => path.join(target, p);
  for (const file of ['usr/lib/p2psip/p2psip.js', 'usr/bin/p2psip', 'lib/systemd/system/p2psip.service', 'etc/p2psip/p2psip.env', 'usr/share/doc/p2psip/copyright', 'usr/share/doc/p2psip/README.md', 'usr/share/doc/p2psip/phones.md', 'usr/share/doc/p2psip/commands.md', 'usr/share/man/man1/p2psip.1.gz']) {
    assert.ok(existsSync(inRoot(file)), `${file} installed`);
  }
  assert.equal(statSync(inRoot('usr/bin/p2psip')).mode & 0o111, 0o111, 'the command is executable');
  const user = readFileSync(inRoot('etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('p2psip:'));
  assert.ok(user, 'a p2psip user exists');
  const [, , uid, , , home, shell] = user!.split(':');
  assert.ok(Number(uid) < 1000, `a system user (uid ${uid})`);
  assert.equal(home, '/var/lib/p2psip');
  assert.match(shell, /nologin|false/);
  const state = statSync(inRoot('var/lib/p2psip'));
  assert.equal(state.mode & 0o777, 0o750);
  assert.equal(state.uid, Number(uid), 'the state directory belongs to the service user');
  const wants = inRoot('etc/systemd/system/multi-user.target.wants/p2psip.service');
  assert.ok(lstatSync(wants).isSymbolicLink(), 'enabled at boot');
  assert.match(readlinkSync(wants), /p2psip\.service$/);
  assert.match(execFileSync('chroot', [target, 'dpkg-query', '-W', '-f', '${Status}', 'p2psip'], { encoding: 'utf8' }), /install ok installed/);
  const purged = spawnSync('chroot', [target, 'dpkg', '--purge', 'p2psip'], { encoding: 'utf8' });
  assert.equal(purged.status, 0, purged.stderr);
  for (const file of ['usr/lib/p2psip/p2psip.js', 'lib/systemd/system/p2psip.service', 'etc/p2psip/p2psip.env', 'var/lib/p2psip', 'etc/systemd/system/multi-user.target.wants/p2psip.service']) {
    assert.ok(!existsSync(inRoot(file)), `${file} gone after purge`);
  }
});

test('the OpenWrt .ipk has opkg\'s layout, and its procd script maps UCI options to p2psip start', () => {
  const dir = path.join(root, 'ipk');
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['xzf', packages.openwrt, '-C', dir]);
  assert.equal(readFileSync(path.join(dir, 'debian-binary'), 'utf8'), '2.0\n');
  const data = execFileSync('tar', ['tzf', path.join(dir, 'data.tar.gz')], { encoding: 'utf8' });
  for (const file of ['./usr/share/p2psip/p2psip.js', './usr/bin/p2psip', './etc/init.d/p2psip', './etc/config/p2psip', './lib/upgrade/keep.d/p2psip']) assert.ok(data.includes(`${file}\n`), `${file} in data.tar.gz`);
  mkdirSync(path.join(dir, 'control'));
  execFileSync('tar', ['xzf', path.join(dir, 'control.tar.gz'), '-C', path.join(dir, 'control')]);
  const control = readFileSync(path.join(dir, 'control', 'control'), 'utf8');
  assert.match(control, /^Package: p2psip$/m);
  assert.match(control, /^Depends: node$/m);
  assert.match(readFileSync(path.join(dir, 'control', 'conffiles'), 'utf8'), /^\/etc\/config\/p2psip$/m);
  mkdirSync(path.join(dir, 'root'));
  execFileSync('tar', ['xzf', path.join(dir, 'data.tar.gz'), '-C', path.join(dir, 'root')]);
  // sysupgrade keeps what keep.d lists: the node's key, certificates and users survive a firmware upgrade.
  assert.equal(readFileSync(path.join(dir, 'root/lib/upgrade/keep.d/p2psip'), 'utf8'), '/etc/p2psip/\n');
  // procd and UCI as OpenWrt's /lib/functions.sh provide them, reduced to what the script uses:
  // config_get reads the package's own default configuration file.
  const stub = `
config_load() { CONF="${path.join(dir, 'root/etc/config/p2psip')}"; }
config_get() { v=$(sed -n "s/^[[:space:]]*option $3 '\\(.*\\)'$/\\1/p" "$CONF"); eval "$1=\\"\${v:-$4}\\""; }
config_get_bool() { config_get "$@"; }
procd_open_instance() { :; }
procd_set_param() { [ "$1" = command ] && { shift; echo "COMMAND $*"; }; }
procd_append_param() { shift; echo "APPEND $*"; }
procd_close_instance() { :; }
procd_open_data() { echo "DATA {"; }
procd_close_data() { echo "DATA }"; }
json_add_array() { echo "ARRAY $1"; }
json_close_array() { :; }
json_add_object() { printf 'RULE'; }
json_add_string() { printf ' %s=%s' "$1" "$2"; }
json_close_object() { echo; }
logger() { echo "LOG $*"; }
`;
  writeFileSync(path.join(dir, 'harness.sh'), `${stub}\n. ${path.join(dir, 'root/etc/init.d/p2psip')}\nstart_service\n`);
  // Not enrolled yet: nothing runs.
  assert.equal(execFileSync('sh', [path.join(dir, 'harness.sh')], { encoding: 'utf8' }).trim(), '');
  const conf = readFileSync(path.join(dir, 'root/etc/config/p2psip'), 'utf8').replace("option data '/etc/p2psip'", `option data '${dir}/state'`).replace("option bootstrap ''", "option bootstrap '198.18.0.1:6084'").replace("option port_mapping 'on'", "option port_mapping 'off'");
  writeFileSync(path.join(dir, 'root/etc/config/p2psip'), conf);
  mkdirSync(path.join(dir, 'state'));
  writeFileSync(path.join(dir, 'state/identity.cbor'), '');
  const out = execFileSync('sh', [path.join(dir, 'harness.sh')], { encoding: 'utf8' });
  assert.match(out, new RegExp(`COMMAND /usr/bin/node --max-old-space-size=24 --max-semi-space-size=1 /usr/share/p2psip/p2psip.js start --data ${dir}/state --overlay-port 6084 --sip-port 5060 --port-mapping off --relay auto --media-ports 40000-40999 --relay-ports 41000-41127`));
  // The router's own firewall opens the ports other homes reach the peer on, and only those, from the WAN zone.
  const rules = out.split('\n').filter((line) => line.startsWith('RULE'));
  assert.deepEqual(rules, [
    'RULE type=rule name=p2psip-overlay src=wan proto=tcp udp dest_port=6084 target=ACCEPT',
    'RULE type=rule name=p2psip-media src=wan proto=udp dest_port=40000-40999 target=ACCEPT',
    'RULE type=rule name=p2psip-relay src=wan proto=udp dest_port=41000-41127 target=ACCEPT',
  ]);
  assert.match(out, /ARRAY firewall/);
  assert.match(out, /APPEND --bootstrap 198\.18\.0\.1:6084/);
  assert.match(out, /APPEND --sip-direct off/, 'SIP between homes through the overlay: the SIP port stays closed to the WAN');
  assert.equal(spawnSync('sh', ['-n', path.join(dir, 'root/etc/init.d/p2psip')]).status, 0, 'the init script parses');

  // A malformed port option: logged, and nothing starts (no respawn loop, no firewall rule).
  for (const [option, value] of [['media_ports', '40000'], ['media_ports', '40000-40002'], ['media_ports', '900-1999'], ['relay_ports', '41000-70000'], ['relay_ports', '41000-41127; rm -rf /'], ['overlay_port', '6084-6090']]) {
    const changed = conf.replace(new RegExp(`option ${option} '[^']*'`), `option ${option} '${value}'`);
    assert.notEqual(changed, conf, `${option} is in the default configuration`);
    writeFileSync(path.join(dir, 'root/etc/config/p2psip'), changed);
    const refused = spawnSync('sh', [path.join(dir, 'harness.sh')], { encoding: 'utf8' });
    assert.match(refused.stdout, new RegExp(`^LOG -t p2psip ${option} '`), `${option} '${value}' is logged: ${refused.stdout}`);
    assert.doesNotMatch(refused.stdout, /COMMAND|RULE/, `${option} '${value}' starts nothing`);
  }
  writeFileSync(path.join(dir, 'root/etc/config/p2psip'), conf);
});
