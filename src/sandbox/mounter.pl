#!/usr/bin/perl
# The namespaces driver's mount helper: one long-lived root process that makes mounts on the host with
# mount(2) directly, so that binding a function's code into a pre-created sandbox costs a few syscalls
# (0.3-1.5 ms per bind measured here, round trip included) instead of a fork and exec of mount(8)
# from the server (~3-10 ms measured from Node here).
# Not setuid and not reachable from any sandbox: the server starts it and speaks to it over a pipe.
# Perl because it is Essential on Debian (perl-base) and can make a raw syscall without a compiler.
#
# Protocol, one request per line, tab-separated: ID VERB ARGS...; one reply per line: ID ok | ID err ERRNO TEXT
#   bind   SRC DST ro|rw STAGE   bind SRC onto DST, read-only or not, always nosuid and nodev. The flags are
#                                set on a private bind at the empty dir STAGE first and that mount is then
#                                bound at DST: a remount does not propagate, a new mount does, with its flags.
#   shared DIR                   make DIR a mount point of its own with shared propagation (mounts under it
#                                made later appear in sandboxes that bound a path below it)
#   tmpfs  DIR BYTES MODE GID    mount a tmpfs of at most BYTES on DIR (nosuid, nodev), root-owned, group GID
#   umount DIR                   detach whatever is mounted on DIR (lazily: open files keep it alive)
#   loop   IMAGE DIR FSTYPE      attach the file IMAGE read-only to a free loop device (LOOP_CONFIGURE, with
#                                autoclear: the device goes when its last mount does) and mount it on DIR
#                                read-only, nosuid, nodev as FSTYPE (squashfs, erofs): a package image
#   netns  FILE                  create a network namespace with its loopback up and keep it alive by a bind
#                                mount on FILE (an empty file), as `ip netns add` does; the helper itself
#                                stays in the namespace it started in
use strict;
use warnings;
use POSIX ();
use Fcntl qw(O_RDONLY O_RDWR);

use Socket qw(AF_INET SOCK_DGRAM);

# mount, umount2, unshare, setns
my %nr = (x86_64 => [165, 166, 272, 308], aarch64 => [40, 39, 97, 268], riscv64 => [40, 39, 97, 268]);
my $arch = (POSIX::uname())[4];
my ($SYS_MOUNT, $SYS_UMOUNT2, $SYS_UNSHARE, $SYS_SETNS) = @{ $nr{$arch} // die "thaw mounter: unsupported architecture $arch\n" };

use constant { MS_RDONLY => 1, MS_NOSUID => 2, MS_NODEV => 4, MS_REMOUNT => 32, MS_BIND => 4096,
  MS_REC => 16384, MS_PRIVATE => 1 << 18, MS_SHARED => 1 << 20, MNT_DETACH => 2,
  CLONE_NEWNET => 0x40000000, LOOP_CTL_GET_FREE => 0x4C82, LOOP_CONFIGURE => 0x4C0A, LOOP_CLR_FD => 0x4C01,
  LO_FLAGS_READ_ONLY => 1, LO_FLAGS_AUTOCLEAR => 4, EBUSY => 16, SIOCGIFFLAGS => 0x8913, SIOCSIFFLAGS => 0x8914, IFF_UP => 1 };

# The namespace the helper returns to after making one.
open(my $home_net, '<', '/proc/self/ns/net') or die "thaw mounter: /proc/self/ns/net: $!\n";

$| = 1;

sub sys_mount {
  my ($src, $dst, $flags, $type, $data) = @_;
  # syscall() wants its string arguments as modifiable variables; a NULL pointer is the number 0.
  my ($s, $d, $t, $o) = (defined $src ? "$src" : undef, "$dst", defined $type ? "$type" : 'none', defined $data ? "$data" : undef);
  return syscall($SYS_MOUNT, defined $s ? $s : 0, $d, $t, $flags, defined $o ? $o : 0) == 0;
}

sub sys_umount {
  my $p = "$_[0]";
  return syscall($SYS_UMOUNT2, $p, MNT_DETACH) == 0;
}

# A new network namespace pinned at $file, loopback up; back in the helper's own namespace either way.
sub make_netns {
  my ($file) = @_;
  open(my $f, '>>', $file) or return 0;
  close($f);
  return 0 unless syscall($SYS_UNSHARE, CLONE_NEWNET) == 0;
  my $ok = eval {
    socket(my $s, AF_INET, SOCK_DGRAM, 0) or return 0;
    my $ifr = pack('Z16 x24', 'lo');
    ioctl($s, SIOCGIFFLAGS, $ifr) or return 0;
    my $flags = unpack('x16 s', $ifr);
    $ifr = pack('Z16 s x22', 'lo', $flags | IFF_UP);
    ioctl($s, SIOCSIFFLAGS, $ifr) or return 0;
    close($s);
    return sys_mount('/proc/thread-self/ns/net', $file, MS_BIND);
  };
  my $e = $! + 0;
  syscall($SYS_SETNS, fileno($home_net), CLONE_NEWNET) == 0 or die "thaw mounter: cannot return to its network namespace: $!\n";
  $! = $e;
  return $ok;
}

# A package image mounted read-only through a loop device of its own. The device is configured in one ioctl
# (fd, read-only, autoclear), so there is no window where it is attached but not marked to go with its mount.
sub loop_mount {
  my ($image, $dir, $type) = @_;
  sysopen(my $img, $image, O_RDONLY) or return 0;
  sysopen(my $ctl, '/dev/loop-control', O_RDWR) or return 0;
  # Another process may take the free device between asking and configuring it (EBUSY): ask again.
  for (1 .. 8) {
    my $n = ioctl($ctl, LOOP_CTL_GET_FREE, 0);
    return 0 unless defined $n;
    $n += 0;
    sysopen(my $dev, "/dev/loop$n", O_RDONLY) or return 0;
    # struct loop_config: u32 fd, u32 block_size, struct loop_info64 (232 bytes: lo_flags at offset 52), u64 reserved[8]
    my $info = pack('Q5 L4 a64 a64 a32 Q2', 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR, substr($image, -63), '', '', 0, 0);
    my $config = pack('L L', fileno($img), 0) . $info . ("\0" x 64);
    if (!ioctl($dev, LOOP_CONFIGURE, $config)) {
      next if $! == EBUSY;
      return 0;
    }
    if (!sys_mount("/dev/loop$n", $dir, MS_RDONLY | MS_NOSUID | MS_NODEV, $type)) {
      my $e = $! + 0;
      ioctl($dev, LOOP_CLR_FD, 0);
      $! = $e;
      return 0;
    }
    # The mount holds the device now; closing ours lets autoclear detach it at the umount.
    return 1;
  }
  $! = EBUSY;
  return 0;
}

# Runs the steps in order; on a failure undoes the mounts made so far and keeps the first errno.
sub steps {
  my @undo;
  for my $step (@_) {
    my ($ok, $made) = $step->();
    if (!$ok) {
      my $e = $! + 0;
      sys_umount($_) for reverse @undo;
      $! = $e;
      return 0;
    }
    push @undo, $made if defined $made;
  }
  return 1;
}

while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $verb, @a) = split /\t/, $line;
  next unless defined $verb;
  my $ok;
  if ($verb eq 'bind' && @a == 4) {
    my ($src, $dst, $mode, $stage) = @a;
    my $flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | ($mode eq 'ro' ? MS_RDONLY : 0);
    $ok = steps(
      sub { (sys_mount($src, $stage, MS_BIND), $stage) },
      sub { (sys_mount(undef, $stage, MS_PRIVATE), undef) },
      sub { (sys_mount(undef, $stage, $flags), undef) },
      sub { (sys_mount($stage, $dst, MS_BIND), $dst) },
    );
    sys_umount($stage) if $ok;
  } elsif ($verb eq 'shared' && @a == 1) {
    $ok = sys_mount($a[0], $a[0], MS_BIND | MS_REC) && sys_mount(undef, $a[0], MS_SHARED | MS_REC);
  } elsif ($verb eq 'tmpfs' && @a == 4 && $a[1] =~ /^\d+$/ && $a[2] =~ /^[0-7]{3,4}$/ && $a[3] =~ /^\d+$/) {
    $ok = sys_mount('tmpfs', $a[0], MS_NOSUID | MS_NODEV, 'tmpfs', "size=$a[1],mode=$a[2],uid=0,gid=$a[3]");
  } elsif ($verb eq 'netns' && @a == 1) {
    $ok = make_netns($a[0]);
  } elsif ($verb eq 'loop' && @a == 3 && $a[2] =~ /^(squashfs|erofs)$/) {
    $ok = loop_mount(@a);
  } elsif ($verb eq 'umount' && @a == 1) {
    $ok = sys_umount($a[0]);
  } else {
    print "$id\terr\t22\tunknown request\n";
    next;
  }
  if ($ok) { print "$id\tok\n"; } else { printf "%s\terr\t%d\t%s\n", $id, $! + 0, "$!"; }
}
