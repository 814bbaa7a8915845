{
  "targets": [
    {
      "target_name": "kiln_deflate",
      "sources": ["native/deflate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-l:libdeflate.a"]
    }
  ]
}
