! A Fortran client of MPMD closure workers (tests/test_capi_mpmd.py): closure_open_mpi of the
! module porous_closure_mpi, then 6 steps of 5 cells (rank r: ids 1000 r + 1..5) at rising
! pressures, every answer written to OUT/fortran<r>.bin (stream: per step rate, area, T, U as
! float64[5], status as int32[5]).
!
! The pip mpich has no Fortran MPI, so MPI_Init and MPI_Comm_rank are called through C binding
! with MPICH's handles (a Fortran MPI_Fint equals the C MPI_Comm there; MPI_COMM_WORLD is
! 0x44000000 as in MPICH's mpif.h). A program with a Fortran MPI uses its module instead.
program capi_mpmd_client
  use, intrinsic :: iso_c_binding, only: c_double, c_int, c_int32_t, c_int64_t, c_null_ptr, c_ptr
  use porous_closure
  use porous_closure_mpi
  implicit none
  interface
    function mpi_init_c(argc, argv) bind(c, name="MPI_Init") result(rc)
      import :: c_int, c_ptr
      type(c_ptr), value :: argc, argv
      integer(c_int) :: rc
    end function mpi_init_c
    function mpi_finalize_c() bind(c, name="MPI_Finalize") result(rc)
      import :: c_int
      integer(c_int) :: rc
    end function mpi_finalize_c
    function mpi_comm_rank_c(comm, rank) bind(c, name="MPI_Comm_rank") result(rc)
      import :: c_int
      integer(c_int), value :: comm
      integer(c_int), intent(out) :: rank
      integer(c_int) :: rc
    end function mpi_comm_rank_c
  end interface
  integer, parameter :: MPICH_COMM_WORLD = int(z'44000000')
  type(closure_type) :: c
  integer :: clients, ierr, step, u
  integer(c_int) :: rank
  integer(c_int64_t) :: ids(5)
  real(c_double) :: p(5), a(5), t(5), r(5), un(5)
  integer(c_int32_t) :: s(5)
  character(len=512) :: out

  call get_command_argument(1, out)
  if (mpi_init_c(c_null_ptr, c_null_ptr) /= 0) error stop 2
  call closure_open_mpi(c, MPICH_COMM_WORLD, clients, 'table', 60.0_c_double, ierr)
  if (ierr /= CLOSURE_OK) then
    write (*, '(a, i0, a, a)') 'open failed: ', ierr, ': ', c%last_error()
    error stop 3
  end if
  if (mpi_comm_rank_c(int(clients, c_int), rank) /= 0) error stop 2
  ids = 1000_c_int64_t * rank + [1, 2, 3, 4, 5]
  open (newunit=u, file=trim(out)//'/fortran'//achar(48 + rank)//'.bin', access='stream', &
        form='unformatted', status='replace')
  do step = 1, 6
    p = [0.5d9, 2d9, 5d9, 9d9, 14d9] * (1.0d0 + 0.1d0 * step)
    call c%query(ids, p, 2.5d-10, hotspot_area_fraction=a, hotspot_temperature=t, &
                 reaction_rate=r, uncertainty=un, status=s, ierr=ierr)
    if (ierr /= CLOSURE_OK) then
      write (*, '(a, a)') 'query failed: ', c%last_error()
      error stop 3
    end if
    write (u) r, a, t, un, s
  end do
  close (u)
  call c%close()
  if (mpi_finalize_c() /= 0) error stop 2
end program capi_mpmd_client
