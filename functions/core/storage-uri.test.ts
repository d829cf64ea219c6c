import { describe, expect, it } from 'vitest';
import { formatStorageUri, parseStorageUri } from './storage-uri.ts';

describe('storage URIs', () => {
  it('reads relative and absolute file:// paths', () => {
    expect(parseStorageUri('file://models/shapes-tiny')).toEqual({ scheme: 'file', path: 'models/shapes-tiny' });
    expect(parseStorageUri('file:///srv/models/x')).toEqual({ scheme: 'file', path: '/srv/models/x' });
  });

  it('splits s3:// URIs into bucket and key', () => {
    expect(parseStorageUri('s3://my-models/models/shapes-tiny/latest')).toEqual({ scheme: 's3', bucket: 'my-models', key: 'models/shapes-tiny/latest' });
    expect(parseStorageUri('s3://my-models')).toEqual({ scheme: 's3', bucket: 'my-models', key: '' });
  });

  it('writes back what it read', () => {
    for (const text of ['file://models/shapes-tiny', 's3://my-models/models/']) expect(formatStorageUri(parseStorageUri(text))).toBe(text);
  });

  it('refuses other schemes, bad bucket names and empty paths, saying which', () => {
    expect(() => parseStorageUri('https://example.com/x')).toThrow('"https://example.com/x" is not a file:// or s3:// URI');
    expect(() => parseStorageUri('s3://My_Bucket/x')).toThrow('"My_Bucket" in "s3://My_Bucket/x" is not a valid S3 bucket name');
    expect(() => parseStorageUri('file://')).toThrow('names no path');
  });
});
