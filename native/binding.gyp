{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["original_dst.cc"],
      "cflags_cc": ["-O2", "-Wall"]
    }
  ]
}
