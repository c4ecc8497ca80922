"""boto3 as an independent S3 client for the tests (the environment of with_s3.py):
    s3tool.py put FILE s3://bucket/key
    s3tool.py get-prefix s3://bucket/prefix/ DIR   every object under the prefix into DIR
    s3tool.py rm s3://bucket/key
    s3tool.py ls s3://bucket/prefix/                 one key per line, sorted
"""
import os
import sys

import boto3


def split(url):
    assert url.startswith("s3://"), url
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def main():
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cmd = sys.argv[1]
    if cmd == "put":
        bucket, key = split(sys.argv[3])
        s3.upload_file(sys.argv[2], bucket, key)
    elif cmd in ("get-prefix", "ls"):
        bucket, prefix = split(sys.argv[2])
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for key in sorted(keys):
            if cmd == "ls":
                print(key)
            else:
                path = os.path.join(sys.argv[3], key[len(prefix):])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                s3.download_file(bucket, key, path)
    elif cmd == "rm":
        bucket, key = split(sys.argv[2])
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
