import { BlockList, isIP } from 'node:net';

const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);

const METADATA_ADDRESSES = new BlockList();
METADATA_ADDRESSES.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local, AWS/GCP/Azure metadata
METADATA_ADDRESSES.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
METADATA_ADDRESSES.addAddress('fd00:ec2::254', 'ipv6'); // AWS metadata over IPv6
METADATA_ADDRESSES.addSubnet('fe80::', 10, 'ipv6'); // IPv6 link-local

/**
 * Why a provider base URL is refused, or null when it is fine: it must be http(s) and must not
 * point at a cloud metadata service. (The WHATWG parser already canonicalises numeric IPv4 forms
 * such as `http://2852039166/`, and IPv4-mapped IPv6 is checked against the IPv4 rules.)
 */
export function baseUrlProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (METADATA_HOSTS.has(bare)) return 'must not point at a cloud metadata service';
  if (isMetadataAddress(bare)) return 'must not point at a cloud metadata or link-local address';
  return null;
}

/** True for an IP address of a cloud metadata service or a link-local one; false for anything else. */
export function isMetadataAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && METADATA_ADDRESSES.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
