"""The peer: webdataset reading the same shards as OpenFlamingo's recipe does from a bucket,
through `pipe:` and a boto3 download to stdout (what `aws s3 cp s3://... -` does), or from disk.
Prints "members N bytes B seconds S" like bench_s3_read.
    read_peer.py s3 BUCKET KEY...      pipe:python -c '<boto3 download_fileobj to stdout>'
    read_peer.py disk PATH...
"""
import shlex
import sys
import time

import webdataset as wds

DOWNLOAD = ("import boto3,sys,os; boto3.client('s3',endpoint_url=os.environ['AWS_ENDPOINT_URL'])"
            ".download_fileobj(sys.argv[1],sys.argv[2],sys.stdout.buffer)")


def main():
    mode = sys.argv[1]
    if mode == "s3":
        bucket = sys.argv[2]
        urls = ["pipe:%s -c %s %s %s" % (shlex.quote(sys.executable), shlex.quote(DOWNLOAD),
                                         bucket, shlex.quote(k)) for k in sys.argv[3:]]
    else:
        urls = sys.argv[2:]
    members = total = 0
    start = time.perf_counter()
    for url in urls:
        for sample in wds.WebDataset(url, shardshuffle=False):
            for key, value in sample.items():
                if not key.startswith("__"):
                    members += 1
                    total += len(value)
    print("members %d bytes %d seconds %.4f" % (members, total, time.perf_counter() - start))


if __name__ == "__main__":
    main()
