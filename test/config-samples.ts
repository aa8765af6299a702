// Config files as the openvpn-install (angristan, Nyr) and PiVPN scripts, kylemanna/docker-openvpn
// and admin panels write them, shared by config-samples.test.ts, config-openvpn-parity.test.ts
// and interop-user-configs.test.ts.

const PEM =
  '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2hhcmRWUE4gdGVzdCBjZXJ0aWZpY2F0ZTAKBggqhkjOPQQDAjAA\n-----END CERTIFICATE-----';
const KEY =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgc2hhcmR2cG4gdGVzdCBrZXk=\n-----END PRIVATE KEY-----';
const STATIC =
  '#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n' +
  '00112233445566778899aabbccddeeff\n'.repeat(16) +
  '-----END OpenVPN Static key V1-----';

export interface Sample {
  readonly name: string;
  readonly text: string;
  /**
   * Files the config names, to create before running the real openvpn on it: relative to its
   * directory, or absolute (the tests place those under their own directory).
   */
  readonly files: readonly string[];
}

/** angristan/openvpn-install server.conf (relative paths, as it runs from /etc/openvpn). */
export const angristanServer: Sample = {
  name: 'server.conf',
  files: ['tls-crypt.key', 'crl.pem', 'ca.crt', 'server_abc.crt', 'server_abc.key', 'ccd/', 'ipp.txt'],
  text: `port 1194
proto udp
dev tun
user nobody
group nogroup
persist-key
persist-tun
keepalive 10 120
topology subnet
server 10.8.0.0 255.255.255.0
ifconfig-pool-persist ipp.txt
push "dhcp-option DNS 1.1.1.1"
push "dhcp-option DNS 1.0.0.1"
push "redirect-gateway def1 bypass-dhcp"
dh none
ecdh-curve prime256v1
tls-crypt tls-crypt.key
crl-verify crl.pem
ca ca.crt
cert server_abc.crt
key server_abc.key
auth SHA256
cipher AES-128-GCM
ncp-ciphers AES-128-GCM
tls-server
tls-version-min 1.2
tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256
client-config-dir ccd
status status.log
verb 3
`,
};

/** angristan/openvpn-install client .ovpn, inline keys. */
export const angristanClient: Sample = {
  name: 'alice.ovpn',
  files: [],
  text: `client
proto udp
explicit-exit-notify
remote 203.0.113.10 1194
dev tun
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
verify-x509-name server_abc name
auth SHA256
auth-nocache
cipher AES-128-GCM
tls-client
tls-version-min 1.2
tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256
ignore-unknown-option block-outside-dns
setenv opt block-outside-dns # Prevent Windows 10 DNS leak
verb 3
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
<tls-crypt>
${STATIC}
</tls-crypt>
`,
};

/**
 * angristan/openvpn-install server.conf as its 2026 releases write it with the defaults:
 * tls-crypt-v2, tls-groups, data-ciphers behind ignore-unknown-option, a management socket, and
 * for IPv4-only clients `push "block-ipv6"` (systemd drops privileges, so no user/group lines).
 */
export const angristan2026Server: Sample = {
  name: 'server.conf',
  files: [
    'tls-crypt-v2.key',
    'crl.pem',
    'ca.crt',
    'server_abc.crt',
    'server_abc.key',
    'ccd/',
    'ipp.txt',
    '/var/log/openvpn/',
    '/var/run/openvpn-server/',
  ],
  text: `port 1194
proto udp
dev tun
persist-key
persist-tun
keepalive 10 120
topology subnet
server 10.8.0.0 255.255.255.0
ifconfig-pool-persist ipp.txt
push "dhcp-option DNS 1.0.0.1"
push "dhcp-option DNS 1.1.1.1"
push "redirect-gateway def1 bypass-dhcp"
push "block-ipv6"
dh none
tls-groups X25519:prime256v1:secp384r1:secp521r1
tls-crypt-v2 tls-crypt-v2.key
crl-verify crl.pem
ca ca.crt
cert server_abc.crt
key server_abc.key
auth SHA256
cipher AES-128-GCM
ignore-unknown-option data-ciphers
data-ciphers AES-128-GCM
ncp-ciphers AES-128-GCM
tls-server
tls-version-min 1.2
remote-cert-tls client
tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256
tls-ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256
client-config-dir ccd
status /var/log/openvpn/status.log
management /var/run/openvpn-server/server.sock unix
verb 3
`,
};

/** The same script's server.conf with IPv6 for clients: a /112 of its ULA, tun-ipv6 pushed, IPv6 redirected. */
export const angristan2026DualStackServer: Sample = {
  ...angristan2026Server,
  text: angristan2026Server.text
    .replace('server 10.8.0.0 255.255.255.0\n', 'server 10.8.0.0 255.255.255.0\nserver-ipv6 fd42:42:42:42::/112\ntun-ipv6\npush tun-ipv6\n')
    .replace(
      'push "block-ipv6"\n',
      'push "dhcp-option DNS 2606:4700:4700::1001"\npush "dhcp-option DNS 2606:4700:4700::1111"\npush "route-ipv6 2000::/3"\npush "redirect-gateway ipv6"\n',
    ),
};

/** angristan/openvpn-install client .ovpn of its 2026 releases: the client's own tls-crypt-v2 key inline. */
export const angristan2026Client: Sample = {
  name: 'alice.ovpn',
  files: [],
  text: `client
proto udp
explicit-exit-notify
remote 203.0.113.10 1194
dev tun
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
verify-x509-name server_abc name
auth SHA256
auth-nocache
cipher AES-128-GCM
ignore-unknown-option data-ciphers
data-ciphers AES-128-GCM
ncp-ciphers AES-128-GCM
tls-client
tls-version-min 1.2
tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256
tls-ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256
ignore-unknown-option block-outside-dns
setenv opt block-outside-dns # Prevent Windows 10 DNS leak
verb 3
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
<tls-crypt-v2>
-----BEGIN OpenVPN tls-crypt-v2 client key-----
c2hhcmR2cG4gdGVzdCB0bHMtY3J5cHQtdjIgY2xpZW50IGtleQ==
-----END OpenVPN tls-crypt-v2 client key-----
</tls-crypt-v2>
`,
};

/** Nyr/openvpn-install server.conf. */
export const nyrServer: Sample = {
  name: 'nyr-server.conf',
  files: ['ca.crt', 'server.crt', 'server.key', 'dh.pem', 'tc.key', 'crl.pem', 'ipp.txt'],
  text: `local 127.0.0.1
port 1194
proto udp
dev tun
ca ca.crt
cert server.crt
key server.key
dh dh.pem
auth SHA512
tls-crypt tc.key
topology subnet
server 10.8.0.0 255.255.255.0
push "redirect-gateway def1 bypass-dhcp"
ifconfig-pool-persist ipp.txt
push "dhcp-option DNS 8.8.8.8"
push "dhcp-option DNS 8.8.4.4"
push "block-outside-dns"
keepalive 10 120
user nobody
group nogroup
persist-key
persist-tun
verb 3
crl-verify crl.pem
explicit-exit-notify
`,
};

/** Nyr/openvpn-install client .ovpn, written on Windows-style CRLF lines. */
export const nyrClientCrlf: Sample = {
  name: 'bob.ovpn',
  files: [],
  text: `client
dev tun
proto udp
remote vpn.example.com 1194
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
auth SHA512
ignore-unknown-option block-outside-dns
verb 3
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
<tls-crypt>
${STATIC}
</tls-crypt>
`.replace(/\n/g, '\r\n'),
};

/** PiVPN server.conf (older releases: tls-auth with a direction and CBC cipher). */
export const pivpnServer: Sample = {
  name: 'pivpn-server.conf',
  files: ['ca.crt', 'server_pi.crt', 'server_pi.key', 'ta.key', 'crl.pem', 'ccd/'],
  text: `dev tun
proto udp
port 1194
ca ca.crt
cert server_pi.crt
key server_pi.key
dh none
ecdh-curve prime256v1
topology subnet
server 10.8.0.0 255.255.255.0
# Set your primary domain name server address for clients
push "dhcp-option DNS 9.9.9.9"
push "dhcp-option DNS 149.112.112.112"
# Prevent DNS leaks on Windows
push "block-outside-dns"
# Override the Client default gateway by using 0.0.0.0/1 and
# 128.0.0.0/1 rather than 0.0.0.0/0. This has the benefit of
# overriding but not wiping out the original default gateway.
push "redirect-gateway def1"
client-to-client
client-config-dir ccd
keepalive 15 120
remote-cert-tls client
tls-version-min 1.2
tls-auth ta.key 0
cipher AES-256-CBC
auth SHA256
user nobody
group nogroup
persist-key
persist-tun
crl-verify crl.pem
status status.log 20
status-version 3
syslog
verb 3
#DuplicateCNs
`,
};

/** PiVPN client profile: key-direction with an inline tls-auth key. */
export const pivpnClient: Sample = {
  name: 'pi.ovpn',
  files: [],
  text: `client
dev tun
proto udp
remote 198.51.100.7 1194
resolv-retry infinite
nobind
remote-cert-tls server
tls-version-min 1.2
verify-x509-name server_pi name
cipher AES-256-CBC
auth SHA256
auth-nocache
verb 3
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
key-direction 1
<tls-auth>
${STATIC}
</tls-auth>
`,
};

/**
 * OpenVPN 2.6.14's own sample-config-files/server.conf (as Debian ships it), with the two lines
 * its comments suggest for mixed old and new clients switched on (tls-auth, data-ciphers with
 * AES-256-CBC) and its /var/log/openvpn paths made relative.
 */
export const openvpnSampleServer: Sample = {
  name: 'sample-server.conf',
  files: ['ca.crt', 'server.crt', 'server.key', 'dh2048.pem', 'ta.key', 'ipp.txt'],
  text: `port 1194
proto udp
dev tun
ca ca.crt
cert server.crt
key server.key  # This file should be kept secret
dh dh2048.pem
topology subnet
server 10.8.0.0 255.255.255.0
ifconfig-pool-persist ipp.txt
keepalive 10 120
tls-auth ta.key 0 # This file is secret
data-ciphers AES-256-GCM:AES-128-GCM:?CHACHA20-POLY1305:AES-256-CBC
persist-key
persist-tun
status openvpn-status.log
verb 3
explicit-exit-notify 1
`,
};

/** OpenVPN 2.6's sample client.conf with the same two lines, CBC only (as a pre-2.4 style peer). */
export const openvpnSampleClient: Sample = {
  name: 'sample-client.conf',
  files: ['ca.crt', 'client.crt', 'client.key', 'ta.key'],
  text: `client
dev tun
proto udp
remote my-server-1 1194
resolv-retry infinite
nobind
persist-key
persist-tun
ca ca.crt
cert client.crt
key client.key
remote-cert-tls server
tls-auth ta.key 1
data-ciphers AES-256-CBC
verb 3
`,
};

/** A pfSense "OpenVPN Client Export" inline profile (AES-256-CBC fallback, udp4 remote, tls-auth). */
export const pfsenseClient: Sample = {
  name: 'pfSense-UDP4-1194-alice-config.ovpn',
  files: [],
  text: `dev tun
persist-tun
persist-key
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305:AES-256-CBC
data-ciphers-fallback AES-256-CBC
auth SHA256
tls-client
client
resolv-retry infinite
remote 192.0.2.44 1194 udp4
nobind
verify-x509-name "server_pf" name
remote-cert-tls server
explicit-exit-notify
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
key-direction 1
<tls-auth>
${STATIC}
</tls-auth>
`,
};

/** An OpenVPN Access Server style connection profile: UDP first, then TCP 443, tls-crypt. */
export const accessServerClient: Sample = {
  name: 'client.ovpn',
  files: [],
  text: `# Automatically generated OpenVPN client config file
# OVPN_ACCESS_SERVER_PROFILE=alice@vpn.example.com
setenv FORWARD_COMPATIBLE 1
client
server-poll-timeout 4
nobind
remote vpn.example.com 1194 udp
remote vpn.example.com 443 tcp
dev tun
dev-type tun
remote-cert-tls server
tls-version-min 1.2
reneg-sec 604800
tun-mtu 1420
verb 3
push-peer-info
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
<tls-crypt>
${STATIC}
</tls-crypt>
`,
};

/**
 * kylemanna/docker-openvpn `ovpn_genconfig -u udp://VPN.SERVERNAME.COM` with its defaults
 * (openvpn.conf in the container's /etc/openvpn): absolute paths into its easy-rsa PKI, net30
 * (no topology line), tls-auth with key-direction on its own line, a server-side `route`, and
 * `block-outside-dns` pushed to every client whatever its platform.
 */
export const kylemannaServer: Sample = {
  name: 'openvpn.conf',
  files: [
    '/etc/openvpn/pki/private/VPN.SERVERNAME.COM.key',
    '/etc/openvpn/pki/ca.crt',
    '/etc/openvpn/pki/issued/VPN.SERVERNAME.COM.crt',
    '/etc/openvpn/pki/dh.pem',
    '/etc/openvpn/pki/ta.key',
    '/tmp/openvpn-status.log',
  ],
  text: `server 192.168.255.0 255.255.255.0
verb 3
key /etc/openvpn/pki/private/VPN.SERVERNAME.COM.key
ca /etc/openvpn/pki/ca.crt
cert /etc/openvpn/pki/issued/VPN.SERVERNAME.COM.crt
dh /etc/openvpn/pki/dh.pem
tls-auth /etc/openvpn/pki/ta.key
key-direction 0
keepalive 10 60
persist-key
persist-tun

proto udp
# Rely on Docker to do port mapping, internally always 1194
port 1194
dev tun0
status /tmp/openvpn-status.log

user nobody
group nogroup
comp-lzo no

### Route Configurations Below
route 192.168.254.0 255.255.255.0

### Push Configurations Below
push "block-outside-dns"
push "dhcp-option DNS 8.8.8.8"
push "dhcp-option DNS 8.8.4.4"
push "comp-lzo no"
`,
};

/** kylemanna/docker-openvpn `ovpn_getclient alice` (combined): inline PKI, tls-auth direction 1, redirect-gateway. */
export const kylemannaClient: Sample = {
  name: 'alice.ovpn',
  files: [],
  text: `
client
nobind
dev tun
remote-cert-tls server

remote VPN.SERVERNAME.COM 1194 udp

<key>
${KEY}
</key>
<cert>
${PEM}
</cert>
<ca>
${PEM}
</ca>
key-direction 1
<tls-auth>
${STATIC}
</tls-auth>

redirect-gateway def1
`,
};

/**
 * A Pritunl user profile (its server generates it for stock OpenVPN clients): a JSON comment
 * first (openvpn 2.6 refuses any line over 256 characters, comments too, so a profile whose
 * comment grew past that does not run on it either), setenv lines, CBC with SHA1, send/receive buffers, and block-outside-dns behind
 * ignore-unknown-option. It connects to kylemanna's server (tls-auth, direction 1 here).
 */
export const pritunlClient: Sample = {
  name: 'example_alice_vpn.ovpn',
  files: [],
  text: `#{"version": 1, "user": "alice", "organization": "example", "server": "vpn", "user_id": "5f1d7a0c9b1e4a2f8c3d6e7f", "organization_id": "5f1d7a0c9b1e4a2f8c3d6e70", "server_id": "5f1d7a0c9b1e4a2f8c3d6e71"}
setenv UV_ID 1d3b8f0e6a2c4e5f9a7b0c1d2e3f4a5b
setenv UV_NAME quiet-river-4821
client
dev tun
dev-type tun
remote 203.0.113.10 1194 udp
nobind
persist-tun
cipher AES-128-CBC
auth SHA1
verb 2
mute 3
push-peer-info
ping 10
ping-restart 60
hand-window 70
server-poll-timeout 4
reneg-sec 2592000
sndbuf 393216
rcvbuf 393216
remote-cert-tls server
comp-lzo no
ignore-unknown-option block-outside-dns
block-outside-dns
key-direction 1
<ca>
${PEM}
</ca>
<tls-auth>
${STATIC}
</tls-auth>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
`,
};

/**
 * DigitalOcean's "How To Set Up and Configure an OpenVPN Server on Ubuntu 22.04": the packaged
 * sample server.conf as the tutorial edits it (tls-crypt in the tls-auth slot, AES-256-GCM with
 * SHA256, dh none, nobody/nogroup, pushed redirect-gateway and DNS), its status and pool files
 * in the package's /var/log/openvpn/.
 */
export const digitalOceanServer: Sample = {
  name: 'server.conf',
  files: ['ca.crt', 'server.crt', 'server.key', 'ta.key', '/var/log/openvpn/ipp.txt', '/var/log/openvpn/openvpn-status.log'],
  text: `port 1194
proto udp
dev tun
ca ca.crt
cert server.crt
key server.key  # This file should be kept secret
;dh dh2048.pem
dh none
topology subnet
server 10.8.0.0 255.255.255.0
ifconfig-pool-persist /var/log/openvpn/ipp.txt
push "redirect-gateway def1 bypass-dhcp"
push "dhcp-option DNS 208.67.222.222"
push "dhcp-option DNS 208.67.220.220"
keepalive 10 120
;tls-auth ta.key 0 # This file is secret
tls-crypt ta.key
;cipher AES-256-CBC
cipher AES-256-GCM
auth SHA256
user nobody
group nogroup
persist-key
persist-tun
status /var/log/openvpn/openvpn-status.log
verb 3
explicit-exit-notify 1
`,
};

/**
 * The same tutorial's client profile: its base.conf (the packaged client.conf with the key
 * files commented out, nobody/nogroup on the client, key-direction 1) and the blocks its
 * make_config.sh appends, tls-crypt last.
 */
export const digitalOceanClient: Sample = {
  name: 'client1.ovpn',
  files: [],
  text: `client
dev tun
proto udp
remote 203.0.113.7 1194
resolv-retry infinite
nobind
user nobody
group nogroup
persist-key
persist-tun
;ca ca.crt
;cert client.crt
;key client.key
remote-cert-tls server
;tls-auth ta.key 1
cipher AES-256-GCM
auth SHA256
key-direction 1
verb 3
; script-security 2
; up /etc/openvpn/update-resolv-conf
; down /etc/openvpn/update-resolv-conf
<ca>
${PEM}
</ca>
<cert>
${PEM}
</cert>
<key>
${KEY}
</key>
<tls-crypt>
${STATIC}
</tls-crypt>
`,
};

/**
 * A Mullvad profile as its configuration generator writes it for Linux (UDP): no client
 * certificate, account number and password from a file, a CA file of its own name, a DHE-only
 * tls-cipher (TLS 1.2's; TLS 1.3 is negotiated first), the resolv-conf scripts of the openvpn
 * package, remote-random over a single relay.
 */
export const mullvadClient: Sample = {
  name: 'mullvad_se_got.conf',
  files: ['mullvad_ca.crt', 'mullvad_userpass.txt'],
  text: `client
dev tun
resolv-retry infinite
nobind
persist-key
persist-tun
verb 3
remote-cert-tls server
ping 10
ping-restart 60
sndbuf 524288
rcvbuf 524288
cipher AES-256-GCM
tls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384
proto udp
auth-user-pass mullvad_userpass.txt
ca mullvad_ca.crt
tun-ipv6
script-security 2
up /etc/openvpn/update-resolv-conf
down /etc/openvpn/update-resolv-conf
fast-io
remote-random
remote se-got-ovpn-001.relays.mullvad.net 1196
`,
};

/**
 * The other end of a provider's profile (the providers' own server configs are not published):
 * a server that takes usernames and passwords instead of client certificates, as OpenVPN's
 * manual sets one up, with the verify script beside it.
 */
export const userPassServer: Sample = {
  name: 'server.conf',
  files: ['ca.crt', 'server.crt', 'server.key', 'check-user.sh'],
  text: `port 1196
proto udp
dev tun
topology subnet
server 10.8.0.0 255.255.255.0
ca ca.crt
cert server.crt
key server.key
dh none
keepalive 10 60
verify-client-cert none
username-as-common-name
script-security 2
auth-user-pass-verify check-user.sh via-file
verb 3
`,
};

/**
 * A NordVPN-style profile (UDP), as its configuration download writes it for the OpenVPN client:
 * tun-mtu-extra 32, mssfix 1450, ping-timer-rem, reneg-sec 0, comp-lzo no, a CBC cipher with
 * SHA512, verify-x509-name on the whole subject (its default type), inline CA and tls-auth with
 * key-direction 1; the login in a file, as users set it up to connect unattended.
 */
export const nordvpnClient: Sample = {
  name: 'us1234.nordvpn.com.udp.ovpn',
  files: ['nordvpn_userpass.txt'],
  text: `client
dev tun
proto udp
remote 192.0.2.10 1194
resolv-retry infinite
remote-random
nobind
tun-mtu 1500
tun-mtu-extra 32
mssfix 1450
persist-key
persist-tun
ping 15
ping-restart 0
ping-timer-rem
reneg-sec 0
comp-lzo no
verify-x509-name CN=us1234.nordvpn.com

remote-cert-tls server

auth-user-pass nordvpn_userpass.txt
verb 3
pull
fast-io
cipher AES-256-CBC
auth SHA512
<ca>
${PEM}
</ca>
key-direction 1
<tls-auth>
${STATIC}
</tls-auth>
`,
};

/**
 * The other end of the NordVPN-style profile: the username/password server of the manual with
 * the profile's tls-auth key (direction 0), SHA512 and comp-lzo no, offering AES-256-CBC after GCM.
 */
export const providerTlsAuthServer: Sample = {
  name: 'server.conf',
  files: ['ca.crt', 'server.crt', 'server.key', 'ta.key', 'check-user.sh'],
  text: `port 1194
proto udp
dev tun
topology subnet
server 10.8.0.0 255.255.255.0
ca ca.crt
cert server.crt
key server.key
dh none
tls-auth ta.key 0
auth SHA512
data-ciphers AES-256-GCM:AES-256-CBC
comp-lzo no
keepalive 10 60
verify-client-cert none
username-as-common-name
script-security 2
auth-user-pass-verify check-user.sh via-file
verb 3
`,
};

export const samples: readonly Sample[] = [
  angristanServer,
  angristanClient,
  angristan2026Server,
  angristan2026DualStackServer,
  angristan2026Client,
  nyrServer,
  nyrClientCrlf,
  pivpnServer,
  pivpnClient,
  openvpnSampleServer,
  openvpnSampleClient,
  pfsenseClient,
  accessServerClient,
  kylemannaServer,
  kylemannaClient,
  pritunlClient,
  digitalOceanServer,
  digitalOceanClient,
  mullvadClient,
  userPassServer,
  nordvpnClient,
  providerTlsAuthServer,
];
