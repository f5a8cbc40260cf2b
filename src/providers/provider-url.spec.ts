import { describe, expect, it } from 'vitest';
import { baseUrlProblem } from './provider-url.js';

describe('baseUrlProblem', () => {
  it.each([
    'https://api.openai.com/v1',
    'http://127.0.0.1:11434/v1',
    'http://localhost:1234/v1',
    'https://my-resource.openai.azure.com/openai/deployments/x',
    'http://[::1]:8000/v1',
    'http://169.255.0.1/',
  ])('accepts %s', (url) => {
    expect(baseUrlProblem(url)).toBeNull();
  });

  it.each([
    ['not a url', /absolute/],
    ['ftp://example.com/', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['http://169.254.169.254/latest/meta-data', /metadata/],
    ['http://169.254.1.2:8080/', /metadata/],
    ['http://2852039166/', /metadata/],
    ['http://0xa9.0xfe.0xa9.0xfe/', /metadata/],
    ['http://[fd00:ec2::254]/', /metadata/],
    ['http://[::ffff:169.254.169.254]/', /metadata/],
    ['http://metadata.google.internal/computeMetadata/v1', /metadata/],
    ['http://METADATA.google.internal./', /metadata/],
    ['http://100.100.100.200/latest', /metadata/],
  ])('refuses %s', (url, reason) => {
    expect(baseUrlProblem(url)).toMatch(reason);
  });
});
