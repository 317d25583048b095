#!/usr/bin/perl
# The namespaces driver's mount helper: one long-lived root process that makes bind mounts on the host
# with mount(2) directly, so that binding a function's code into a pre-created sandbox costs a syscall
# (~50 µs) instead of a fork and exec of mount(8) from the server (~3-10 ms measured from Node here).
# Not setuid and not reachable from any sandbox: the server starts it and speaks to it over a pipe.
# Perl because it is Essential on Debian (perl-base) and can make a raw syscall without a compiler.
#
# Protocol, one request per line, tab-separated: ID VERB ARGS...; one reply per line: ID ok | ID err ERRNO TEXT
#   bind   SRC DST ro|rw   bind SRC (recursively) onto DST, read-only or not; nosuid, nodev
#   shared DIR             make DIR a mount point of its own with shared propagation (mounts under it
#                          made later appear in sandboxes that bound a path below it)
#   umount DIR             detach whatever is mounted on DIR (lazily: open files keep it alive)
use strict;
use warnings;
use POSIX ();

my %nr = (x86_64 => [165, 166], aarch64 => [40, 39], riscv64 => [40, 39]);
my $arch = (POSIX::uname())[4];
my ($SYS_MOUNT, $SYS_UMOUNT2) = @{ $nr{$arch} // die "thaw mounter: unsupported architecture $arch\n" };

use constant { MS_RDONLY => 1, MS_NOSUID => 2, MS_NODEV => 4, MS_REMOUNT => 32, MS_BIND => 4096,
  MS_REC => 16384, MS_PRIVATE => 1 << 18, MS_SHARED => 1 << 20, MNT_DETACH => 2 };

$| = 1;

sub sys_mount {
  my ($src, $dst, $flags) = @_;
  # Strings are passed as pointers, numbers as integers: a NULL source or type is the number 0.
  # syscall() wants its string arguments as modifiable variables.
  my ($s, $d, $t) = (defined $src ? "$src" : undef, "$dst", 'none');
  return syscall($SYS_MOUNT, defined $s ? $s : 0, $d, $t, $flags, 0) == 0;
}

while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $verb, @a) = split /\t/, $line;
  next unless defined $verb;
  my $ok;
  if ($verb eq 'bind' && @a == 3) {
    $ok = sys_mount($a[0], $a[1], MS_BIND | MS_REC);
    if ($ok && $a[2] eq 'ro') {
      $ok = sys_mount(undef, $a[1], MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV);
      if (!$ok) { my $e = $! + 0; my $p = "$a[1]"; syscall($SYS_UMOUNT2, $p, MNT_DETACH); $! = $e; }
    }
  } elsif ($verb eq 'shared' && @a == 1) {
    $ok = sys_mount($a[0], $a[0], MS_BIND | MS_REC) && sys_mount(undef, $a[0], MS_SHARED | MS_REC);
  } elsif ($verb eq 'umount' && @a == 1) {
    my $p = "$a[0]";
    $ok = syscall($SYS_UMOUNT2, $p, MNT_DETACH) == 0;
  } else {
    print "$id\terr\t22\tunknown request\n";
    next;
  }
  if ($ok) { print "$id\tok\n"; } else { printf "%s\terr\t%d\t%s\n", $id, $! + 0, "$!"; }
}
