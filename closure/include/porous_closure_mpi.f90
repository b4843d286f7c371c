! porous_closure_mpi.f90: closure_open_mpi for Fortran (MPMD closure workers, docs/capi.md
! "MPMD workers"), beside the module porous_closure. Compile both with the program and link the
! MPI library of the C API:
!   gfortran -c $(python -m closure.capi --fortran-module)
!   gfortran -c $(python -m closure.capi --mpi --fortran-module)
!   mpif90 app.f90 porous_closure*.o $(python -m closure.capi --mpi --libs)
!
!   use porous_closure
!   use porous_closure_mpi
!   type(closure_type) :: c
!   integer :: clients
!   call closure_open_mpi(c, MPI_COMM_WORLD, clients, 'table')   ! collective over the world
!   ... c%query(...) as in process; use clients where the app used MPI_COMM_WORLD ...
!   call c%close()                                                ! STOP to every worker
!
! Communicators are Fortran handles (mpif.h / use mpi integers; with mpi_f08 pass comm%MPI_VAL
! and receive clients into a type(MPI_Comm)'s MPI_VAL): no Fortran MPI module is needed to
! compile this one.
module porous_closure_mpi
  use, intrinsic :: iso_c_binding, only: c_char, c_double, c_int, c_null_char, c_ptr
  use porous_closure, only: closure_type
  implicit none
  private
  public :: closure_open_mpi

  interface
    function c_open_mpi_f(world, clients, mode, timeout) bind(c, name="closure_open_mpi_f") &
        result(h)
      import :: c_char, c_double, c_int, c_ptr
      integer(c_int), value :: world
      integer(c_int), intent(out) :: clients
      character(kind=c_char), intent(in) :: mode(*)
      real(c_double), value :: timeout
      type(c_ptr) :: h
    end function c_open_mpi_f
  end interface

contains

  !> Collective over world: the handshake with the closure workers; clients receives the
  !> clients' communicator. mode 'table' (default) or 'online' (deterministic); timeout: seconds
  !> a call waits for a worker (default: $MACRO_MPI_TIMEOUT, else 600). Without ierr a failure
  !> prints the message and stops the program.
  subroutine closure_open_mpi(c, world, clients, mode, timeout, ierr)
    type(closure_type), intent(inout) :: c
    integer, intent(in) :: world
    integer, intent(out) :: clients
    character(len=*), intent(in), optional :: mode
    real(c_double), intent(in), optional :: timeout
    integer, intent(out), optional :: ierr
    character(len=:), allocatable :: m
    real(c_double) :: t
    integer(c_int) :: cl
    m = 'table'
    if (present(mode)) m = trim(mode)
    t = 0.0_c_double
    if (present(timeout)) t = timeout
    call c%attach(c_open_mpi_f(int(world, c_int), cl, m//c_null_char, t), ierr)
    clients = int(cl)
  end subroutine closure_open_mpi
end module porous_closure_mpi
