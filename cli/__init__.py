"""The genmodel command line (installed as ``genmodel.cli``)."""
